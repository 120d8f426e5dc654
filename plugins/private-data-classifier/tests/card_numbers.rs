//! Card-number recall and precision on a generated evaluation set (fixed seed), plus real order
//! requests from `../shared/data/datasets/bitext_intents.train.csv` as hard negatives.
//!
//! Reproduce the figures: `cargo test -p private-data-classifier --test card_numbers -- --nocapture`
//!
//! Positives: valid numbers of every major scheme (Visa 16 and 19, Mastercard 51–55 and
//! 2221–2720, Amex, Discover, Diners, JCB, UnionPay, Maestro, Mir, RuPay), each typed the ways
//! people type them (unbroken, in 4s with spaces or dashes, Amex 4-6-5, Diners 4-6-4, followed
//! by an expiry or security code) inside customer-like sentences. A positive counts as found
//! only if a span starts at the number and covers it, and nothing more than a security code
//! typed right after it (`4301 6653 6003 4530 123` also reads as a valid 19-digit Visa; both
//! readings are private). A card label anywhere else in a sentence is a false positive.
//!
//! Negatives (every label on them is a false positive): the dataset's order requests with real
//! order ids; generated order ids, tracking numbers (UPS, USPS, FedEx, Royal Mail, DHL), phone
//! numbers (international and national), valid IBANs with and without spaces, random Luhn-valid
//! digit strings whose prefix no card issuer uses, typed in card-like groups, and timestamps.
//!
//! The generator knows nothing of the classifier's code: issuer prefixes and lengths come from
//! the schemes' published ranges, written out here independently.

use std::path::PathBuf;

use private_data_classifier::classify;

/// splitmix64: a small deterministic generator, so the set is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn digit(&mut self) -> u8 {
        self.below(10) as u8
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.digit())).collect()
    }
}

fn luhn_check_digit(body: &[u8]) -> u8 {
    // The check digit makes the sum over body + check a multiple of 10.
    let mut sum = 0u32;
    for (i, d) in body.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    ((10 - sum % 10) % 10) as u8
}

/// A Luhn-valid number of `len` digits starting with `prefix`.
fn with_luhn(rng: &mut Rng, prefix: &str, len: usize) -> String {
    let mut body: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
    while body.len() < len - 1 {
        body.push(rng.digit());
    }
    let check = luhn_check_digit(&body);
    body.push(check);
    body.iter().map(|d| char::from(b'0' + d)).collect()
}

/// A scheme: its name, a prefix generator, and the lengths it issues.
type Scheme = (&'static str, fn(&mut Rng) -> String, &'static [usize]);

/// (scheme, prefixes, lengths), from the schemes' published ranges.
fn schemes(rng: &mut Rng) -> (&'static str, String, usize) {
    let options: &[Scheme] = &[
        ("visa", |_| "4".into(), &[16, 19]),
        ("mastercard", |r| (51 + r.below(5)).to_string(), &[16]),
        ("mastercard-2", |r| (2221 + r.below(500)).to_string(), &[16]),
        ("amex", |r| r.pick(&["34", "37"]).to_string(), &[15]),
        (
            "discover",
            |r| {
                r.pick(&["6011", "644", "645", "646", "647", "648", "649", "65"])
                    .to_string()
            },
            &[16, 19],
        ),
        (
            "diners",
            |r| {
                r.pick(&["300", "301", "302", "303", "304", "305", "36", "38"])
                    .to_string()
            },
            &[14],
        ),
        ("jcb", |r| (3528 + r.below(62)).to_string(), &[16, 19]),
        ("unionpay", |_| "62".into(), &[16, 17, 18, 19]),
        (
            "maestro",
            |r| {
                r.pick(&["5018", "5020", "5038", "6304", "6759", "6761"])
                    .to_string()
            },
            &[16, 19],
        ),
        ("mir", |r| (2200 + r.below(5)).to_string(), &[16]),
        (
            "rupay",
            |r| r.pick(&["60", "81", "82", "508"]).to_string(),
            &[16],
        ),
    ];
    let (name, prefix, lengths) = rng.pick(options);
    let prefix = prefix(rng);
    let len = *rng.pick(lengths);
    (name, prefix, len)
}

/// The number typed in one of the ways people type card numbers.
fn typed(rng: &mut Rng, number: &str) -> String {
    let groups = |sizes: &[usize], sep: &str| {
        let mut out = Vec::new();
        let mut at = 0;
        for &s in sizes {
            if at >= number.len() {
                break;
            }
            let end = (at + s).min(number.len());
            out.push(&number[at..end]);
            at = end;
        }
        if at < number.len() {
            out.push(&number[at..]);
        }
        out.join(sep)
    };
    let len = number.len();
    match rng.below(6) {
        0 => number.to_string(),
        1 | 2 => {
            let sep = *rng.pick(&[" ", "-", " ", "  ", "."]);
            match len {
                15 if rng.below(2) == 0 => groups(&[4, 6, 5], sep),
                14 if rng.below(2) == 0 => groups(&[4, 6, 4], sep),
                _ => groups(&[4, 4, 4, 4, 4], sep),
            }
        }
        3 => groups(&[4, 4, 4, 4, 4], " "),
        4 => groups(&[4, 4, 4, 4, 4], "-"),
        _ => number.to_string(),
    }
}

const POSITIVE_TEMPLATES: &[&str] = &[
    "@AcmeCare you charged my card {} twice for one order, sort it out",
    "Card number: {}",
    "{} is the card I paid with, where is my refund?",
    "paid with {} yesterday and still no confirmation",
    "my visa ({}) was declined at checkout again",
    "hi, card no. {} exp 09/27, can you check the payment?",
    "the card ending... actually the full number is {} 123",
    "Refund it to {}.",
    "I used {}, the booking reference is ABX42Q",
    "why was {} charged £49.99 on 12/11?",
    "Card {} expiry 11/28 cvv 321 — please cancel the order",
    "my new card is {}!",
    "Mi tarjeta {} fue cobrada dos veces",
    "Ma carte {} a été débitée deux fois",
    "please update my card to {} thanks",
    "number {}\nname Sam Patel",
];

const NEGATIVE_TEMPLATES: &[&str] = &[
    "my order {} never arrived",
    "tracking number {} hasn't moved in 6 days",
    "call me on {} please",
    "refund to my account {} please",
    "reference {} — still waiting",
    "the parcel {} was delivered to the wrong address",
    "{} is the booking reference",
    "my number is {}",
    "it happened at {} according to the log",
    "Order: {}",
];

/// Sentences that mention a generated hard negative.
fn negative(rng: &mut Rng) -> (String, &'static str) {
    let kind = rng.below(8);
    let (value, what) = match kind {
        0 => {
            // Order ids as shops print them.
            let n = 5 + rng.below(11) as usize;
            let id = rng.digits(n);
            let dashed = format!("{}-{}", rng.digits(3), rng.digits(7));
            let forms = [format!("#{id}"), id.clone(), format!("ORD-{id}"), dashed];
            (rng.pick(&forms).clone(), "order id")
        }
        1 => {
            let t = match rng.below(5) {
                0 => format!("1Z{}{}", rng.digits(6).replace('0', "A"), rng.digits(10)),
                1 => {
                    let n = format!("94{}", rng.digits(20));
                    n.as_bytes()
                        .chunks(4)
                        .map(|c| std::str::from_utf8(c).unwrap())
                        .collect::<Vec<_>>()
                        .join(" ")
                }
                2 => rng.digits(12),
                3 => format!("RM{}GB", rng.digits(9)),
                _ => format!("96{}", rng.digits(20)),
            };
            (t, "tracking number")
        }
        2 => {
            let p = match rng.below(7) {
                0 => format!("+44 7{} {}", rng.digits(3), rng.digits(6)),
                1 => format!("+1 ({}) {}-{}", rng.digits(3), rng.digits(3), rng.digits(4)),
                2 => format!("+49 170 {}", rng.digits(8)),
                3 => format!(
                    "+33 6 {} {} {} {}",
                    rng.digits(2),
                    rng.digits(2),
                    rng.digits(2),
                    rng.digits(2)
                ),
                4 => format!("0044 {} {}", rng.digits(4), rng.digits(6)),
                5 => format!("07{} {}", rng.digits(3), rng.digits(6)),
                _ => format!("49 {} {} {}", rng.digits(3), rng.digits(4), rng.digits(4)),
            };
            (p, "phone number")
        }
        3 => (iban(rng), "IBAN"),
        4 | 5 => {
            // Luhn-valid, in card-like groups, with a prefix no issuer uses.
            let first = *rng.pick(&["1", "7", "8", "9", "0"]);
            let first = if first == "8" { "89" } else { first };
            let len = 13 + rng.below(7) as usize;
            let number = with_luhn(rng, first, len);
            (
                typed(rng, &number),
                "Luhn-valid number outside issuer ranges",
            )
        }
        6 => {
            let ts = match rng.below(3) {
                0 => format!("17{}", rng.digits(11)),
                1 => format!(
                    "2026{:02}{:02}{}",
                    1 + rng.below(12),
                    1 + rng.below(28),
                    rng.digits(6)
                ),
                _ => format!(
                    "2026-11-{:02}T{:02}:{}Z",
                    1 + rng.below(28),
                    rng.below(24),
                    rng.digits(2)
                ),
            };
            (ts, "timestamp")
        }
        _ => {
            let n = 8 + rng.below(4) as usize;
            (rng.digits(n), "plain number")
        }
    };
    let sentence = rng.pick(NEGATIVE_TEMPLATES).replace("{}", &value);
    (sentence, what)
}

/// A valid IBAN of a common country, with or without the usual spaces.
fn iban(rng: &mut Rng) -> String {
    let (cc, bban) = match rng.below(6) {
        0 => ("DE", rng.digits(18)),
        1 => ("GB", format!("WEST{}", rng.digits(14))),
        2 => ("FR", rng.digits(23)),
        3 => ("ES", rng.digits(20)),
        4 => ("NL", format!("ABNA{}", rng.digits(10))),
        _ => ("IT", format!("X{}", rng.digits(22))),
    };
    let rearranged = format!("{bban}{cc}00");
    let mut rem = 0u64;
    for c in rearranged.chars() {
        let v = c.to_digit(36).unwrap() as u64;
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    let check = 98 - rem;
    let compact = format!("{cc}{check:02}{bban}");
    if rng.below(2) == 0 {
        compact
    } else {
        compact
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Sentences from the bitext dataset that carry an order id.
fn bitext_orders() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/datasets/bitext_intents.train.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // instruction is the 3rd column; entity_type the 5th. Instructions hold no commas before
    // the order id often enough; parse the simple way and keep rows whose entity is an order id.
    text.lines()
        .skip(1)
        .filter(|l| l.contains(",order_id,"))
        .filter_map(|l| {
            let rest = l.splitn(3, ',').nth(2)?;
            let (instruction, _) = if let Some(q) = rest.strip_prefix('"') {
                let end = q.find("\",")?;
                (q[..end].to_string(), ())
            } else {
                (rest.split(',').next()?.to_string(), ())
            };
            Some(instruction)
        })
        .collect()
}

#[test]
fn card_number_recall_is_1_and_precision_at_least_0_99() {
    let mut rng = Rng(0x5EED_CA4D);
    let allowed: Vec<String> = vec![];
    let found_cards = |text: &str| -> Vec<(usize, usize)> {
        classify(text, &allowed)
            .into_iter()
            .filter(|l| l.name == "private:card-number")
            .flat_map(|l| l.evidence)
            .filter_map(|e| e.span.map(|s| (s.start as usize, s.end as usize)))
            .collect()
    };

    let (mut tp, mut fn_, mut fp, mut exact) = (0usize, 0usize, 0usize, 0usize);
    let mut misses = Vec::new();
    let mut false_alarms = Vec::new();
    let positives = 3000;
    for _ in 0..positives {
        let (_, prefix, len) = schemes(&mut rng);
        let number = with_luhn(&mut rng, &prefix, len);
        let typed = typed(&mut rng, &number);
        let template = rng.pick(POSITIVE_TEMPLATES);
        let at = template.find("{}").unwrap();
        let text = template.replace("{}", &typed);
        let want = (at, at + typed.len());
        let got = found_cards(&text);
        // The span is the number, or the number and a security code typed right after it
        // (`… 1111 123`: the same digits read as a 19-digit card; the code is private too).
        let covers = |&(s, e): &(usize, usize)| {
            s == want.0
                && e >= want.1
                && text[want.1..e].trim_start_matches([' ', '-', '.']).len() <= 4
                && text[want.1..e]
                    .trim_start_matches([' ', '-', '.'])
                    .bytes()
                    .all(|b| b.is_ascii_digit())
        };
        if got.iter().any(covers) {
            tp += 1;
            exact += got.contains(&want) as usize;
        } else {
            fn_ += 1;
            misses.push(text.clone());
        }
        fp += got
            .iter()
            .filter(|g| g.1 <= want.0 || g.0 >= want.1)
            .count();
    }

    let orders = bitext_orders();
    assert!(orders.len() > 100, "{} order rows", orders.len());
    let mut negatives = 0;
    let mut by_kind: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for text in &orders {
        negatives += 1;
        let n = found_cards(text).len();
        fp += n;
        let e = by_kind.entry("bitext order request").or_default();
        e.0 += 1;
        e.1 += n;
        if n > 0 {
            false_alarms.push(text.clone());
        }
    }
    for _ in 0..4000 {
        let (text, what) = negative(&mut rng);
        negatives += 1;
        let n = found_cards(&text).len();
        fp += n;
        let e = by_kind.entry(what).or_default();
        e.0 += 1;
        e.1 += n;
        if n > 0 {
            false_alarms.push(format!("{what}: {text}"));
        }
    }

    let recall = tp as f64 / (tp + fn_) as f64;
    let precision = tp as f64 / (tp + fp) as f64;
    println!(
        "card numbers: {positives} positives, {negatives} negatives ({} bitext order requests)",
        orders.len()
    );
    println!(
        "  recall {recall:.4} (tp {tp}, fn {fn_}; {exact} spans exactly the number), precision {precision:.4} (fp {fp})"
    );
    for (what, (n, f)) in &by_kind {
        println!("  negatives {what:<42} {n:>5} sentences, {f} flagged");
    }
    for m in misses.iter().take(10) {
        println!("  missed: {m}");
    }
    for f in false_alarms.iter().take(10) {
        println!("  false alarm: {f}");
    }
    assert_eq!(recall, 1.0, "missed: {misses:?}");
    assert!(precision >= 0.99, "precision {precision}: {false_alarms:?}");
}
