//! Trains the two built-in topic models on the training parts of their datasets: airline
//! complaint reasons (CC BY-NC-SA 4.0, evaluation only) and Bitext intents (CDLA-Sharing-1.0).
fn main() {
    use switchboard_textmodel::build::{
        AIRLINE_COMPLAINT_REASON, BITEXT_INTENT, train_into_out_dir,
    };
    train_into_out_dir(&AIRLINE_COMPLAINT_REASON, "complaint-reason.model");
    train_into_out_dir(&BITEXT_INTENT, "intent.model");
}
