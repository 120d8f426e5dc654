//! The customer's own words of an e-mail: quoted history and signatures removed, so classifiers
//! judge what the customer wrote now, not the thread they replied under or their legal footer.
//!
//! No maintained Rust crate does this (the known ones are ports of GitHub's `email_reply_parser`
//! in other languages), so this is a small line-based scanner. It cuts at the first line that
//! starts quoted history (attribution lines such as `On … wrote:`, Outlook's
//! `-----Original Message-----` or `From:`/`Sent:` header block, a run of `>` lines) or a
//! signature (the `-- ` delimiter of RFC 3676, mobile footers like "Sent from my iPhone").
//! `>` lines interleaved with the customer's answers (inline replies) are dropped one by one.
//! If cutting would leave nothing, the full text is returned: a message that is all quote is
//! better classified whole than as empty.

/// Longest attribution line we join across a wrap (`On Mon, … <a@b.c>` / `wrote:` on the next).
const MAX_ATTRIBUTION_CHARS: usize = 300;

/// Lines that open quoted history in the major clients, lowercase, matched at the line start
/// (Outlook/Exchange, Gmail "Forwarded message", Apple Mail forwards).
const HISTORY_MARKERS: &[&str] = &[
    "-----original message-----",
    "----- original message -----",
    "-------- original message --------",
    "---------- forwarded message ---------",
    "begin forwarded message:",
    "-----ursprüngliche nachricht-----",
    "-----message d'origine-----",
    "-----mensaje original-----",
    "________________________________",
];

/// Attribution endings: "On <date>, <person> wrote:" and translations (Gmail, Apple Mail,
/// Thunderbird).
const WROTE: &[&str] = &[
    "wrote:",
    "writes:",
    "schrieb:",
    "a écrit :",
    "a écrit:",
    "escribió:",
    "scrisse:",
    "escreveu:",
    "schreef:",
    "skrev:",
    "napisał:",
    "kirjoitti:",
    "のメッセージ:",
    "写道：",
    "寫道：",
];

/// Mobile and webmail footers that are signatures, lowercase, matched at the line start.
const MOBILE_SIGNATURES: &[&str] = &[
    "sent from my iphone",
    "sent from my ipad",
    "sent from my android",
    "sent from my samsung",
    "sent from my galaxy",
    "sent from my huawei",
    "sent from my mobile",
    "sent from my phone",
    "sent from my blackberry",
    "sent from outlook",
    "sent from mail for windows",
    "sent from yahoo mail",
    "sent with proton mail",
    "get outlook for ios",
    "get outlook for android",
    "von meinem iphone gesendet",
    "envoyé de mon iphone",
    "enviado desde mi iphone",
    "inviato da iphone",
];

fn is_outlook_header_block(lines: &[&str], i: usize) -> bool {
    // `From: X` followed within the next few lines by `Sent:` / `Date:` and `To:`/`Subject:`.
    let starts = |l: &str, p: &[&str]| {
        let l = l.trim_start().to_lowercase();
        p.iter().any(|p| l.starts_with(p))
    };
    let line = lines[i].trim_start().trim_start_matches('*');
    if !starts(line, &["from:", "von:", "de :", "de:", "van:"]) {
        return false;
    }
    let window = lines
        .iter()
        .skip(i + 1)
        .take(5)
        .map(|l| l.trim_start_matches('*'));
    let mut sent = false;
    let mut addressed = false;
    for l in window {
        sent |= starts(
            l,
            &[
                "sent:",
                "date:",
                "gesendet:",
                "envoyé :",
                "envoyé:",
                "enviado:",
            ],
        );
        addressed |= starts(
            l,
            &[
                "to:", "subject:", "an:", "betreff:", "à :", "objet :", "para:", "asunto:",
            ],
        );
    }
    sent && addressed
}

fn is_attribution(line: &str, next: Option<&str>) -> bool {
    let l = line.trim();
    if l.is_empty() || l.len() > MAX_ATTRIBUTION_CHARS {
        return false;
    }
    let ends = |s: &str| {
        let s = s.trim_end().to_lowercase();
        WROTE.iter().any(|w| s.ends_with(w))
    };
    if ends(l) {
        return true;
    }
    // Gmail wraps long attributions: "On Tue, … Jane Doe <" / "jane@example.com> wrote:".
    let lower = l.to_lowercase();
    let opens = ["on ", "am ", "le ", "el ", "il ", "em ", "op "]
        .iter()
        .any(|p| lower.starts_with(p));
    opens
        && next.is_some_and(|n| {
            let n = n.trim();
            n.len() <= MAX_ATTRIBUTION_CHARS && ends(n)
        })
}

fn is_quote(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// The part of `text` the customer wrote for this message (see the module docs).
pub fn strip(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n");
    let lines: Vec<&str> = normalized.split('\n').collect();
    // quoted_to_end[i]: lines i.. are all quotes or blank (one backward pass, so a long run of
    // inline quotes stays linear).
    let mut quoted_to_end = vec![true; lines.len() + 1];
    for i in (0..lines.len()).rev() {
        quoted_to_end[i] =
            quoted_to_end[i + 1] && (is_quote(lines[i]) || lines[i].trim().is_empty());
    }
    let mut kept: Vec<&str> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let lower = line.trim().to_lowercase();
        // RFC 3676 signature delimiter ("-- "); many clients drop the trailing space.
        if line == "-- " || line == "--" {
            break;
        }
        if HISTORY_MARKERS.iter().any(|m| lower.starts_with(m))
            || MOBILE_SIGNATURES.iter().any(|m| lower.starts_with(m))
            || is_attribution(line, lines.get(i + 1).copied())
            || is_outlook_header_block(&lines, i)
        {
            break;
        }
        if is_quote(line) {
            // A trailing block of quotes ends the message; an inline quote is dropped alone.
            if quoted_to_end[i] {
                break;
            }
            i += 1;
            continue;
        }
        kept.push(line);
        i += 1;
    }
    let out = kept.join("\n").trim().to_string();
    if out.is_empty() {
        text.trim().to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::strip;

    #[test]
    fn gmail_attribution_and_quote_are_cut() {
        let t = "Still waiting for my refund.\n\nOn Tue, Dec 1, 2026 at 9:14 AM Acme Support <support@acme.example> wrote:\n> Hi Jane,\n> we are looking into it.\n";
        assert_eq!(strip(t), "Still waiting for my refund.");
    }

    #[test]
    fn wrapped_attribution_is_cut() {
        let t = "Thanks!\n\nOn Tue, Dec 1, 2026 at 9:14 AM Acme Support <\nsupport@acme.example> wrote:\n\n> old\n";
        assert_eq!(strip(t), "Thanks!");
    }

    #[test]
    fn outlook_original_message_and_header_block_are_cut() {
        let t = "The box arrived broken.\r\n\r\n-----Original Message-----\r\nFrom: Acme\r\nSent: Monday\r\n";
        assert_eq!(strip(t), "The box arrived broken.");
        let t = "Please cancel.\n\nFrom: Acme Support <support@acme.example>\nSent: Monday, November 30, 2026 10:00 AM\nTo: Jane\nSubject: Your order\n\nHello Jane";
        assert_eq!(strip(t), "Please cancel.");
    }

    #[test]
    fn signatures_are_cut() {
        assert_eq!(
            strip("Where is my order?\n-- \nJane Doe\nCEO, Example Ltd"),
            "Where is my order?"
        );
        assert_eq!(
            strip("Where is my order?\n\nSent from my iPhone"),
            "Where is my order?"
        );
        assert_eq!(
            strip("Wo ist meine Bestellung?\n\nVon meinem iPhone gesendet"),
            "Wo ist meine Bestellung?"
        );
    }

    #[test]
    fn inline_quotes_are_dropped_but_answers_kept() {
        let t = "> Which order?\n#1234\n> Which colour?\nBlue\n";
        assert_eq!(strip(t), "#1234\nBlue");
    }

    #[test]
    fn long_interleaved_quotes_stay_fast() {
        // 200k lines of quote and answer: quadratic scanning would take minutes.
        let t = "> q\na\n".repeat(100_000);
        let start = std::time::Instant::now();
        assert_eq!(strip(&t).lines().count(), 100_000);
        assert!(start.elapsed().as_secs() < 5);
    }

    #[test]
    fn plain_text_and_all_quote_messages_are_kept() {
        assert_eq!(
            strip("  Hello,\nmy order is late.  "),
            "Hello,\nmy order is late."
        );
        // Nothing but a quote: keep it rather than hand classifiers an empty text.
        assert_eq!(strip("> forwarded complaint"), "> forwarded complaint");
        // "From:" in the customer's own prose is not a header block.
        assert_eq!(
            strip("From: the moment it arrived it was broken."),
            "From: the moment it arrived it was broken."
        );
    }
}
