//! Private-data classifier: the trigger for taking a conversation private.
//!
//! Labels, each with the byte span of every finding (the notes never repeat the data itself):
//!
//! - `private:card-number`: a payment card number — Luhn-valid, with a length its issuer uses
//!   for its prefix, typed unbroken or in the groups printed on cards; order ids, tracking
//!   numbers, phone numbers, IBAN digits and timestamps do not count (see
//!   `switchboard_textscan::pii`, and `tests/card_numbers.rs` for the measured recall and
//!   precision);
//! - `private:account-number`: an IBAN (mod-97 checked), a UK sort code with account number, or
//!   a number labelled as an account number;
//! - `private:email`, `private:phone` (international and national formats),
//!   `private:postal-address` (street and number; UK postcodes; US state and ZIP).
//!
//! Config: `allowed_contacts` — the tenant's own addresses, domains or numbers (list); an
//! e-mail address or phone number containing one of them is not the customer's private data.

use switchboard_sdk::prelude::*;
use switchboard_textscan::pii;

/// Label `text`; `allowed` are the tenant's own contacts (lowercase substrings).
pub fn classify(text: &str, allowed: &[String]) -> Vec<Label> {
    let own = |s: &str| {
        let s = s.to_lowercase();
        allowed
            .iter()
            .any(|a| !a.is_empty() && s.contains(a.as_str()))
    };
    let mut labels = Vec::new();
    let mut add = |name: &str, score: f32, found: Vec<(usize, usize, String)>| {
        if !found.is_empty() {
            labels.push(
                found
                    .iter()
                    .fold(Label::new(name, score), |l, (s, e, note)| {
                        l.at(note, *s, *e)
                    }),
            );
        }
    };

    let cards = pii::find_cards(text);
    add(
        "private:card-number",
        0.99,
        cards
            .iter()
            .map(|c| {
                (
                    c.start,
                    c.end,
                    format!("{} card number (Luhn-valid)", c.scheme),
                )
            })
            .collect(),
    );
    let accounts = pii::find_accounts(text);
    let account_score = if accounts.iter().any(|a| a.2 == "IBAN") {
        0.98
    } else {
        0.9
    };
    add(
        "private:account-number",
        account_score,
        accounts
            .into_iter()
            .map(|(s, e, what)| (s, e, what.to_string()))
            .collect(),
    );
    add(
        "private:email",
        0.95,
        pii::find_emails(text)
            .into_iter()
            .filter(|&(s, e)| !own(&text[s..e]))
            .map(|(s, e)| (s, e, "e-mail address".to_string()))
            .collect(),
    );
    add(
        "private:phone",
        0.85,
        pii::find_phones(text)
            .into_iter()
            .filter(|&(s, e)| {
                let digits: String = text[s..e].chars().filter(char::is_ascii_digit).collect();
                !own(&text[s..e])
                    && !allowed
                        .iter()
                        .any(|a| !a.is_empty() && digits.contains(a.as_str()))
            })
            .map(|(s, e)| (s, e, "phone number".to_string()))
            .collect(),
    );
    let addresses = pii::find_addresses(text);
    let address_score = if addresses.iter().any(|a| a.2 == "street and number") {
        0.85
    } else {
        0.7
    };
    add(
        "private:postal-address",
        address_score,
        addresses
            .into_iter()
            .map(|(s, e, what)| (s, e, what.to_string()))
            .collect(),
    );
    labels
}

struct PrivateData;

impl Classifier for PrivateData {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "private-data-classifier",
            env!("CARGO_PKG_VERSION"),
            "Card numbers, bank accounts, e-mail addresses, phone numbers and postal addresses, with spans",
        )
        .config_key("allowed_contacts")
    }

    fn classify(message: Message, _ctx: CallContext) -> Result<Vec<Label>, PluginError> {
        let allowed: Vec<String> = config::list("allowed_contacts")
            .into_iter()
            .map(|a| a.trim().to_lowercase())
            .filter(|a| !a.is_empty())
            .collect();
        Ok(classify(&message.text, &allowed))
    }
}

/// Pre-initialisation: the patterns are built once when the host loads the plugin, not on
/// every call (they depend on no tenant's config).
fn init() {
    switchboard_textscan::pii::warm();
    // Run the rules once, so the automata states they build are in the snapshot too.
    for text in switchboard_textscan::WARM_UP_TEXTS {
        let _ = classify(text, &[]);
    }
}

switchboard_sdk::export_classifier!(PrivateData, init = init);

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(String, String)> {
        classify(text, &["acme.example".into()])
            .into_iter()
            .flat_map(|l| {
                l.evidence
                    .iter()
                    .map(|e| {
                        let s = e.span.unwrap();
                        (
                            l.name.clone(),
                            text[s.start as usize..s.end as usize].to_string(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn each_kind_with_its_span() {
        let text = "card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, mail jo@example.com, \
                    phone +44 7700 900123, I live at 221B Baker Street, London NW1 6XE";
        let f = found(text);
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "private:card-number",
                "private:account-number",
                "private:email",
                "private:phone",
                "private:postal-address",
                "private:postal-address"
            ],
            "{f:?}"
        );
        assert_eq!(f[0].1, "4111 1111 1111 1111");
        assert_eq!(f[1].1, "GB82 WEST 1234 5698 7654 32");
        assert_eq!(f[3].1, "+44 7700 900123");
        assert_eq!(f[5].1, "NW1 6XE");
    }

    #[test]
    fn notes_never_repeat_the_data_and_own_contacts_are_not_private() {
        let labels = classify("card 5500 0000 0000 0004", &[]);
        assert_eq!(
            labels[0].evidence[0].note,
            "mastercard card number (Luhn-valid)"
        );
        assert!(found("write to care@acme.example").is_empty());
        assert!(found("my order #48213 never arrived, tracking 1Z999AA10123456784").is_empty());
    }
}
