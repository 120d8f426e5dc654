//! Trains the sentiment model on the training part of the airline tweets (CC BY-NC-SA 4.0: the
//! built model is for evaluation; see the crate docs for retraining on your own data).
fn main() {
    switchboard_textmodel::build::train_into_out_dir(
        &switchboard_textmodel::build::AIRLINE_SENTIMENT,
        "sentiment.model",
    );
}
