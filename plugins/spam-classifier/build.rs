//! Trains the spam model on the training part of the UCI SMS Spam Collection (CC BY 4.0), with
//! its decision threshold chosen by cross-validation on that part (`Recipe::threshold`).
fn main() {
    switchboard_textmodel::build::train_into_out_dir(
        &switchboard_textmodel::build::SMS_SPAM,
        "spam.model",
    );
}
