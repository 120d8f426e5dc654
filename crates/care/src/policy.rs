//! The tenant's care policy: ordered rules, each a CEL condition over what is known about a
//! message (labels and scores, channel, public or private, author and their history, text,
//! business hours), and the actions it takes. Every decision keeps the rules that fired, their
//! conditions, the tenant's reason and the facts they read, so an agent can see why.
//!
//! ```toml
//! [policy]
//! stop_at_first_match = true      # false: every matching rule adds its actions
//! default = ["respond"]           # when no rule matches
//! [[policy.rules]]
//! name = "spam"
//! when = "score('spam') >= 0.8"
//! then = "ignore"
//! why = "Spam gets no reply"
//! ```
//!
//! Variables: `labels` (map of label name to the highest score), `channel`, `public`, `private`,
//! `origin` (`mention`, `direct-message`, `comment`, `listening`, `other`), `text`, `language`
//! (`""` when unknown), `author` (`id`, `handle`, `previous_messages`, `offences`, `praise`,
//! `blocked`), `in_hours`, `weekday` (1 = Monday), `hour` (0–23, tenant time), `degraded` (list
//! of plugins skipped by a fail-open failure). Function `score(name)` is a label's score, 0 when
//! absent (`labels['x']` is an error when `x` is absent; `'x' in labels` tests for it).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cel_interpreter::{Context, Program, Value};
use serde::{Deserialize, Serialize};

/// What the store knows about an author before this message (the store keeps the counts).
pub use switchboard_store::AuthorHistory;

/// What a rule can do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// No reply, nothing to watch (spam, senseless posts).
    Ignore,
    /// No reply, but keep the conversation in view (trolls).
    Monitor,
    /// Block the author (sparingly: repeat spammers and abusers).
    Block,
    /// Send the conversation to a team or queue (`team = "…"`).
    Route,
    /// Put a supervisor on it (`to = "…"`, default `supervisor`); its drafts need sign-off.
    Escalate,
    /// Reply publicly with a short invitation to a private message and continue there;
    /// remember to close the loop publicly.
    TakePrivate,
    /// Attach the conversation to an incident (`incident = "…"`).
    Incident,
    /// Ask the reply-suggesters for drafts.
    Respond,
}

/// An action with its parameters, as recorded in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Ignore,
    Monitor,
    Block,
    Route { team: String },
    Escalate { to: String },
    TakePrivate,
    Incident { incident: String },
    Respond,
}

impl Action {
    /// Whether this action asks for drafts.
    pub fn wants_drafts(&self) -> bool {
        matches!(self, Action::Respond | Action::TakePrivate)
    }
}

/// One action or several, as written in a rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(ActionKind),
    Many(Vec<ActionKind>),
}

impl OneOrMany {
    fn kinds(&self) -> Vec<ActionKind> {
        match self {
            OneOrMany::One(k) => vec![*k],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A rule as written in the tenant's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// A CEL expression that must evaluate to a boolean.
    pub when: String,
    pub then: OneOrMany,
    /// Why the rule exists, shown to agents with every decision it makes.
    pub why: Option<String>,
    /// For `route`.
    pub team: Option<String>,
    /// For `escalate`.
    pub to: Option<String>,
    /// For `incident`.
    pub incident: Option<String>,
}

/// The `[policy]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Stop at the first rule that matches (the usual), or let every matching rule act.
    #[serde(default = "yes")]
    pub stop_at_first_match: bool,
    /// Actions when no rule matches.
    #[serde(default = "respond")]
    pub default: OneOrMany,
    /// Queue drafts that pass every guard for delivery without an agent (the best one per
    /// message). Off by default: drafts wait for an agent.
    #[serde(default)]
    pub auto_send: bool,
    /// The public reply that invites a customer to a private message (`take-private`).
    /// `{name}` is the customer's shown name, `{signature}` the tenant's signature.
    #[serde(default = "default_invitation")]
    pub private_invitation: String,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

fn yes() -> bool {
    true
}

fn respond() -> OneOrMany {
    OneOrMany::One(ActionKind::Respond)
}

fn default_invitation() -> String {
    "Sorry about this, {name}. So we can look at your account safely, please send us a private message and we'll pick it up there. {signature}".into()
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            stop_at_first_match: true,
            default: respond(),
            auto_send: false,
            private_invitation: default_invitation(),
            rules: vec![],
        }
    }
}

/// A rule ready to evaluate.
pub struct Rule {
    pub name: String,
    pub when: String,
    pub why: Option<String>,
    pub actions: Vec<Action>,
    program: Arc<Program>,
    /// Variables the condition reads (recorded with a decision).
    reads: Vec<String>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("when", &self.when)
            .finish()
    }
}

/// A tenant's compiled policy.
#[derive(Debug)]
pub struct Policy {
    pub stop_at_first_match: bool,
    pub default: Vec<Action>,
    pub auto_send: bool,
    pub private_invitation: String,
    pub rules: Vec<Rule>,
}

/// A rule that could not be compiled or used; the message names the rule.
#[derive(Debug, thiserror::Error)]
#[error("policy rule `{rule}`: {message}")]
pub struct PolicyError {
    pub rule: String,
    pub message: String,
}

fn resolve_actions(
    kinds: &[ActionKind],
    rule: &str,
    team: &Option<String>,
    to: &Option<String>,
    incident: &Option<String>,
) -> Result<Vec<Action>, PolicyError> {
    let fail = |message: &str| PolicyError {
        rule: rule.to_string(),
        message: message.to_string(),
    };
    if kinds.is_empty() {
        return Err(fail("`then` names no action"));
    }
    kinds
        .iter()
        .map(|k| {
            Ok(match k {
                ActionKind::Ignore => Action::Ignore,
                ActionKind::Monitor => Action::Monitor,
                ActionKind::Block => Action::Block,
                ActionKind::Route => Action::Route {
                    team: team
                        .clone()
                        .filter(|t| !t.trim().is_empty())
                        .ok_or_else(|| fail("`route` needs `team = \"…\"`"))?,
                },
                ActionKind::Escalate => Action::Escalate {
                    to: to.clone().unwrap_or_else(|| "supervisor".into()),
                },
                ActionKind::TakePrivate => Action::TakePrivate,
                ActionKind::Incident => Action::Incident {
                    incident: incident
                        .clone()
                        .filter(|t| !t.trim().is_empty())
                        .ok_or_else(|| fail("`incident` needs `incident = \"…\"`"))?,
                },
                ActionKind::Respond => Action::Respond,
            })
        })
        .collect()
}

/// Longest `when` accepted, in bytes: real conditions are a line or two.
pub const MAX_WHEN_BYTES: usize = 4096;
/// Deepest nesting accepted, in brackets of the text and in levels of the parsed expression.
/// CEL's parser, evaluator and the expression's drop all recurse once per level (the parser
/// heavily: 15 parentheses overflowed a 2 MiB thread stack in a debug build), and a stack
/// overflow aborts the process, every tenant with it. Real conditions nest a few levels.
pub const MAX_NESTING: usize = 32;
/// Stack of the thread that parses a condition: enough for the deepest the limits above allow
/// (reserved address space; only what the parse touches is used).
const PARSE_STACK_BYTES: usize = 256 << 20;

/// Parse one condition within the limits above, on a thread with a stack deep enough for it.
/// A `when` is a tenant's input (configs arrive over the API too): whatever it says must be a
/// load error, never a crash of the host.
fn parse_when(when: &str) -> Result<Arc<Program>, String> {
    if when.len() > MAX_WHEN_BYTES {
        return Err(format!(
            "the expression is {} bytes, more than the {MAX_WHEN_BYTES} allowed",
            when.len()
        ));
    }
    if bracket_depth(when) > MAX_NESTING {
        return Err(format!(
            "the expression nests brackets more than {MAX_NESTING} deep"
        ));
    }
    if double_negation(when) {
        return Err(
            "write `!(!x)` for a double negation: the CEL parser reads `!!x` as `!x`".to_string(),
        );
    }
    if let Some(program) = shared_program(when) {
        return Ok(program);
    }
    let program = Arc::new(parse_on_deep_stack(when.to_string())?);
    share_program(when, &program);
    Ok(program)
}

/// Compiled conditions by their text, shared by every policy that holds them: tenants
/// started from the same template repeat the same conditions, and parsing is most of what a
/// tenant costs to load. An entry lives only while some policy holds its program, so strangers'
/// configs cannot grow this map beyond what is loaded.
static SHARED_PROGRAMS: std::sync::Mutex<SharedPrograms> = std::sync::Mutex::new(SharedPrograms {
    by_text: None,
    prune_at: 64,
});

struct SharedPrograms {
    by_text: Option<HashMap<String, std::sync::Weak<Program>>>,
    /// Forget the programs no policy holds any more when the map reaches this size.
    prune_at: usize,
}

fn shared_program(when: &str) -> Option<Arc<Program>> {
    let shared = SHARED_PROGRAMS.lock().unwrap_or_else(|p| p.into_inner());
    shared.by_text.as_ref()?.get(when)?.upgrade()
}

fn share_program(when: &str, program: &Arc<Program>) {
    let mut shared = SHARED_PROGRAMS.lock().unwrap_or_else(|p| p.into_inner());
    let SharedPrograms { by_text, prune_at } = &mut *shared;
    let by_text = by_text.get_or_insert_with(HashMap::new);
    by_text.insert(when.to_string(), Arc::downgrade(program));
    if by_text.len() >= *prune_at {
        by_text.retain(|_, p| p.strong_count() > 0);
        *prune_at = (by_text.len() * 2).max(64);
    }
}

/// A condition to parse and where its result goes.
type ParseJob = (String, std::sync::mpsc::SyncSender<Result<Program, String>>);

/// Parse on the one long-lived thread with a deep stack. A thread per condition cost ten
/// thread starts (each mapping and unmapping the 256 MiB stack) per tenant: with ten thousand
/// tenants that was most of the server's start-up.
fn parse_on_deep_stack(source: String) -> Result<Program, String> {
    static PARSER: std::sync::OnceLock<Result<std::sync::mpsc::Sender<ParseJob>, String>> =
        std::sync::OnceLock::new();
    let parser = PARSER.get_or_init(|| {
        let (jobs, inbox) = std::sync::mpsc::channel::<ParseJob>();
        std::thread::Builder::new()
            .name("policy-parse".into())
            .stack_size(PARSE_STACK_BYTES)
            .spawn(move || {
                for (source, answer) in inbox {
                    let _ = answer.send(parse_and_compile(&source));
                }
            })
            .map_err(|e| format!("cannot start the parser thread: {e}"))?;
        Ok(jobs)
    });
    let jobs = parser.as_ref().map_err(Clone::clone)?;
    let (answer, result) = std::sync::mpsc::sync_channel(1);
    jobs.send((source, answer))
        .map_err(|_| "the parser thread has stopped".to_string())?;
    result
        .recv()
        .unwrap_or_else(|_| Err("the expression is malformed".to_string()))
}

fn parse_and_compile(source: &str) -> Result<Program, String> {
    // The CEL parser panics on some malformed input instead of returning an error; the
    // thread carries on with the next condition.
    std::panic::catch_unwind(|| {
        let tree = cel_parser::Parser::default()
            .parse(source)
            .map_err(|e| e.to_string())?;
        if deeper_than(&tree, MAX_NESTING) {
            return Err(format!(
                "the expression nests more than {MAX_NESTING} levels deep"
            ));
        }
        Program::compile(source).map_err(|e| e.to_string())
    })
    .unwrap_or_else(|_| Err("the expression is malformed".to_string()))
}

/// The deepest nesting of brackets outside string literals.
fn bracket_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            (None, _) => {}
        }
    }
    deepest
}

/// Whether a `!` directly follows another (spaces between) outside string literals.
fn double_negation(text: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '!') if previous == '!' => return true,
            (None, c) if c.is_whitespace() => continue,
            (None, _) => {}
        }
        previous = c;
    }
    false
}

/// Whether the parsed expression is more than `limit` levels deep (counted without recursion).
fn deeper_than(root: &cel_parser::ast::IdedExpr, limit: usize) -> bool {
    use cel_parser::ast::{EntryExpr, Expr};
    let mut stack = vec![(root, 1usize)];
    while let Some((node, depth)) = stack.pop() {
        if depth > limit {
            return true;
        }
        let below = depth + 1;
        match &node.expr {
            Expr::Call(call) => {
                stack.extend(call.target.iter().map(|t| (&**t, below)));
                stack.extend(call.args.iter().map(|a| (a, below)));
            }
            Expr::Comprehension(c) => {
                for part in [
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ] {
                    stack.push((&**part, below));
                }
            }
            Expr::List(list) => stack.extend(list.elements.iter().map(|e| (e, below))),
            Expr::Map(map) => map_entries(&map.entries, below, &mut stack),
            Expr::Struct(st) => map_entries(&st.entries, below, &mut stack),
            Expr::Select(select) => stack.push((&*select.operand, below)),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
    return false;

    fn map_entries<'a>(
        entries: &'a [cel_parser::ast::IdedEntryExpr],
        depth: usize,
        stack: &mut Vec<(&'a cel_parser::ast::IdedExpr, usize)>,
    ) {
        for entry in entries {
            match &entry.expr {
                EntryExpr::StructField(f) => stack.push((&f.value, depth)),
                EntryExpr::MapEntry(m) => {
                    stack.push((&m.key, depth));
                    stack.push((&m.value, depth));
                }
            }
        }
    }
}

impl Policy {
    /// Compile a `[policy]` section. Every condition is parsed now, so a typo is a load error
    /// naming the rule, not a surprise on the first message.
    pub fn compile(config: &PolicyConfig) -> Result<Policy, PolicyError> {
        let mut rules = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for r in &config.rules {
            if r.name.trim().is_empty() {
                return Err(PolicyError {
                    rule: r.name.clone(),
                    message: "a rule needs a name".into(),
                });
            }
            if !names.insert(r.name.clone()) {
                return Err(PolicyError {
                    rule: r.name.clone(),
                    message: "this rule name is used twice".into(),
                });
            }
            let program = parse_when(&r.when).map_err(|e| PolicyError {
                rule: r.name.clone(),
                message: format!("cannot parse `when`: {e}"),
            })?;
            let reads = program
                .references()
                .variables()
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>();
            if let Some(unknown) = reads
                .iter()
                .find(|v| !KNOWN_VARIABLES.contains(&v.as_str()))
            {
                return Err(PolicyError {
                    rule: r.name.clone(),
                    message: format!(
                        "`when` reads `{unknown}`, which is not a policy variable (known: {})",
                        KNOWN_VARIABLES.join(", ")
                    ),
                });
            }
            rules.push(Rule {
                name: r.name.clone(),
                when: r.when.clone(),
                why: r.why.clone(),
                actions: resolve_actions(&r.then.kinds(), &r.name, &r.team, &r.to, &r.incident)?,
                program,
                reads,
            });
        }
        Ok(Policy {
            stop_at_first_match: config.stop_at_first_match,
            default: resolve_actions(&config.default.kinds(), "(default)", &None, &None, &None)?,
            auto_send: config.auto_send,
            private_invitation: config.private_invitation.clone(),
            rules,
        })
    }

    /// Decide what to do with a message.
    pub fn decide(&self, facts: &Facts) -> Decision {
        let ctx = facts.context();
        let mut decision = Decision::default();
        for rule in &self.rules {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rule.program.execute(&ctx)
            }));
            let Ok(result) = run else {
                decision.errors.push(format!(
                    "rule `{}`: evaluation failed; rule skipped",
                    rule.name
                ));
                continue;
            };
            match result {
                Ok(Value::Bool(true)) => {
                    decision.fired.push(FiredRule {
                        rule: rule.name.clone(),
                        when: rule.when.clone(),
                        why: rule.why.clone(),
                        actions: rule.actions.clone(),
                        read: facts.read(&rule.reads),
                    });
                    for a in &rule.actions {
                        if !decision.actions.contains(a) {
                            decision.actions.push(a.clone());
                        }
                    }
                    if self.stop_at_first_match {
                        break;
                    }
                }
                Ok(Value::Bool(false)) => {}
                Ok(other) => decision.errors.push(format!(
                    "rule `{}`: `when` gave {other:?}, not a boolean; rule skipped",
                    rule.name
                )),
                Err(e) => decision
                    .errors
                    .push(format!("rule `{}`: {e}; rule skipped", rule.name)),
            }
        }
        if decision.fired.is_empty() {
            decision.actions = self.default.clone();
            decision.by_default = true;
        }
        decision
    }
}

const KNOWN_VARIABLES: &[&str] = &[
    "labels", "channel", "public", "private", "origin", "text", "language", "author", "in_hours",
    "weekday", "hour", "degraded",
];

/// What a rule fired, and on what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiredRule {
    pub rule: String,
    pub when: String,
    pub why: Option<String>,
    pub actions: Vec<Action>,
    /// The values of the variables the condition read (labels: every score), at decision time.
    pub read: BTreeMap<String, serde_json::Value>,
}

/// The policy's decision for one message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub actions: Vec<Action>,
    pub fired: Vec<FiredRule>,
    /// No rule matched; `actions` are the policy's default.
    pub by_default: bool,
    /// Rules that could not be evaluated on this message (skipped, with the reason).
    pub errors: Vec<String>,
}

impl Decision {
    /// A short summary for tables: `ignore`, `route(care)+respond`.
    pub fn summary(&self) -> String {
        if self.actions.is_empty() {
            return "none".into();
        }
        self.actions
            .iter()
            .map(|a| match a {
                Action::Ignore => "ignore".to_string(),
                Action::Monitor => "monitor".to_string(),
                Action::Block => "block".to_string(),
                Action::Route { team } => format!("route({team})"),
                Action::Escalate { to } => format!("escalate({to})"),
                Action::TakePrivate => "take-private".to_string(),
                Action::Incident { incident } => format!("incident({incident})"),
                Action::Respond => "respond".to_string(),
            })
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// Everything a rule can read about one message.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Highest score per label name, over the live classifiers.
    pub labels: BTreeMap<String, f64>,
    pub channel: String,
    pub public: bool,
    pub origin: String,
    pub text: String,
    pub language: String,
    pub author_id: String,
    pub author_handle: String,
    pub history: AuthorHistory,
    pub in_hours: bool,
    pub weekday: i64,
    pub hour: i64,
    pub degraded: Vec<String>,
}

impl Facts {
    fn author(&self) -> BTreeMap<String, serde_json::Value> {
        let mut m = BTreeMap::new();
        m.insert("id".into(), self.author_id.clone().into());
        m.insert("handle".into(), self.author_handle.clone().into());
        m.insert(
            "previous_messages".into(),
            self.history.previous_messages.into(),
        );
        m.insert("offences".into(), self.history.offences.into());
        m.insert("praise".into(), self.history.praise.into());
        m.insert("blocked".into(), self.history.blocked.into());
        m
    }

    fn value(&self, name: &str) -> serde_json::Value {
        match name {
            "labels" => serde_json::to_value(&self.labels).unwrap_or_default(),
            "channel" => self.channel.clone().into(),
            "public" => self.public.into(),
            "private" => (!self.public).into(),
            "origin" => self.origin.clone().into(),
            "text" => self.text.clone().into(),
            "language" => self.language.clone().into(),
            "author" => serde_json::to_value(self.author()).unwrap_or_default(),
            "in_hours" => self.in_hours.into(),
            "weekday" => self.weekday.into(),
            "hour" => self.hour.into(),
            "degraded" => serde_json::to_value(&self.degraded).unwrap_or_default(),
            _ => serde_json::Value::Null,
        }
    }

    /// The values of `names`; label scores are always included (rules read them through
    /// `score()`, which is not a variable).
    fn read(&self, names: &[String]) -> BTreeMap<String, serde_json::Value> {
        let mut out: BTreeMap<String, serde_json::Value> = names
            .iter()
            .filter(|n| n.as_str() != "text")
            .map(|n| (n.clone(), self.value(n)))
            .collect();
        out.insert("labels".into(), self.value("labels"));
        out
    }

    fn context(&self) -> Context<'static> {
        let mut ctx = Context::default();
        for name in KNOWN_VARIABLES {
            let value = cel_interpreter::to_value(self.value(name)).unwrap_or(Value::Null);
            ctx.add_variable_from_value(*name, value);
        }
        let labels = Arc::new(self.labels.clone());
        ctx.add_function("score", move |name: Arc<String>| -> f64 {
            labels.get(name.as_str()).copied().unwrap_or(0.0)
        });
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(toml_text: &str) -> Result<Policy, PolicyError> {
        let config: PolicyConfig = toml::from_str(toml_text).unwrap();
        Policy::compile(&config)
    }

    fn facts(labels: &[(&str, f64)]) -> Facts {
        Facts {
            labels: labels.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            channel: "x".into(),
            public: true,
            origin: "mention".into(),
            text: "hello".into(),
            ..Default::default()
        }
    }

    fn one_rule(when: &str) -> Result<Policy, PolicyError> {
        Policy::compile(&PolicyConfig {
            rules: vec![RuleConfig {
                name: "deep".into(),
                when: when.into(),
                then: OneOrMany::One(ActionKind::Ignore),
                why: None,
                team: None,
                to: None,
                incident: None,
            }],
            ..PolicyConfig::default()
        })
    }

    #[test]
    fn tenants_with_the_same_condition_share_one_program_while_they_hold_it() {
        let when = "labels['sharing-test'] > 0.5 && channel == 'x'";
        let first = one_rule(when).unwrap();
        let second = one_rule(when).unwrap();
        assert!(Arc::ptr_eq(
            &first.rules[0].program,
            &second.rules[0].program
        ));
        // Sharing changes nothing a policy decides.
        assert_eq!(
            second.decide(&facts(&[("sharing-test", 0.9)])).fired.len(),
            1
        );
        drop((first, second));
        assert!(
            shared_program(when).is_none(),
            "kept after its last policy went"
        );
    }

    #[test]
    fn conditions_no_policy_holds_are_forgotten() {
        for i in 0..1000 {
            one_rule(&format!("labels['forget-{i}'] > 0.5")).unwrap();
        }
        let held = SHARED_PROGRAMS
            .lock()
            .unwrap()
            .by_text
            .as_ref()
            .map_or(0, HashMap::len);
        // Other tests compile policies at the same time; a few hundred entries at most stay.
        assert!(
            held < 600,
            "{held} conditions kept after their policies went"
        );
    }

    #[test]
    fn nesting_past_the_limit_is_a_load_error_not_a_stack_overflow() {
        // Found by the policy fuzz target: ~15 parentheses overflowed a 2 MiB stack in CEL's
        // parser and aborted the whole process; long `+` or `.field` chains did the same later.
        let n = 200;
        for when in [
            format!("{}true{}", "(".repeat(n), ")".repeat(n)),
            format!("{}1{} == 1", "[".repeat(n), "]".repeat(n)),
            format!("{}1 > 0", "1 + ".repeat(n)),
            format!("author{} == 1", ".a".repeat(n)),
            format!("{}true", "true ? true : ".repeat(n)),
        ] {
            let e = one_rule(&when).map(|_| ()).unwrap_err();
            assert!(
                e.message.contains(&format!("more than {MAX_NESTING}")),
                "{e}"
            );
        }
        let e = one_rule(&"1 == 1 && ".repeat(1000))
            .map(|_| ())
            .unwrap_err();
        assert!(e.message.contains("bytes"), "{e}");
    }

    #[test]
    fn a_double_negation_is_refused_because_the_parser_drops_one() {
        // cel-parser 0.10 reads `!!true` as `!true` (false), silently inverting a rule.
        for when in ["!!true", "! !(hour >= 0)", "public && !!private"] {
            let e = one_rule(when).map(|_| ()).unwrap_err();
            assert!(e.message.contains("`!(!x)`"), "{when}: {e}");
        }
        let p = one_rule("!(!true) && text != '!!' && text != \"x\"").unwrap();
        assert_eq!(p.decide(&facts(&[])).actions, vec![Action::Ignore]);
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let when = format!("text.matches('{}') || true", "(".repeat(100));
        assert_eq!(bracket_depth(&when), 1);
        assert_eq!(bracket_depth(r#"text == "a\"((" && (true)"#), 1);
    }

    #[test]
    fn the_deepest_accepted_conditions_evaluate_on_an_ordinary_thread() {
        // Compiled on the parser's thread, but decided here, on a test thread's 2 MiB stack.
        let d = MAX_NESTING;
        for when in [
            format!("{}true{}", "(".repeat(d), ")".repeat(d)),
            format!("{}true", "false ? false : ".repeat(d - 1)),
        ] {
            let p = one_rule(&when).unwrap_or_else(|e| panic!("{when}: {e}"));
            let decision = p.decide(&facts(&[]));
            assert_eq!(decision.actions, vec![Action::Ignore], "{when}");
        }
    }

    #[test]
    fn first_match_stops_and_records_why() {
        let p = policy(
            r#"
            [[rules]]
            name = "spam"
            when = "score('spam') >= 0.8"
            then = "ignore"
            why = "no reply to spam"
            [[rules]]
            name = "all"
            when = "true"
            then = ["route", "respond"]
            team = "care"
            "#,
        )
        .unwrap();
        let d = p.decide(&facts(&[("spam", 0.9)]));
        assert_eq!(d.actions, vec![Action::Ignore]);
        assert_eq!(d.fired.len(), 1);
        assert_eq!(d.fired[0].rule, "spam");
        assert_eq!(d.fired[0].why.as_deref(), Some("no reply to spam"));
        assert_eq!(d.fired[0].read["labels"]["spam"], 0.9);
        let d = p.decide(&facts(&[("spam", 0.2)]));
        assert_eq!(
            d.actions,
            vec![
                Action::Route {
                    team: "care".into()
                },
                Action::Respond
            ]
        );
    }

    #[test]
    fn without_first_match_every_matching_rule_acts() {
        let p = policy(
            r#"
            stop_at_first_match = false
            [[rules]]
            name = "negative"
            when = "score('sentiment:negative') > 0.5"
            then = "escalate"
            [[rules]]
            name = "answer"
            when = "!private"
            then = "respond"
            "#,
        )
        .unwrap();
        let d = p.decide(&facts(&[("sentiment:negative", 0.7)]));
        assert_eq!(d.fired.len(), 2);
        assert_eq!(d.summary(), "escalate(supervisor)+respond");
    }

    #[test]
    fn no_match_uses_the_default() {
        let p = policy("default = \"monitor\"\n").unwrap();
        let d = p.decide(&facts(&[]));
        assert!(d.by_default);
        assert_eq!(d.actions, vec![Action::Monitor]);
    }

    #[test]
    fn rules_read_author_history_hours_and_text() {
        let p = policy(
            r#"
            [[rules]]
            name = "repeat-offender"
            when = "author.offences >= 2 && public"
            then = "block"
            [[rules]]
            name = "night"
            when = "!in_hours && text.contains('refund')"
            then = "monitor"
            "#,
        )
        .unwrap();
        let mut f = facts(&[]);
        f.history.offences = 2;
        assert_eq!(p.decide(&f).actions, vec![Action::Block]);
        f.history.offences = 0;
        f.text = "I want a refund".into();
        f.in_hours = false;
        let d = p.decide(&f);
        assert_eq!(d.actions, vec![Action::Monitor]);
        assert_eq!(d.fired[0].read["in_hours"], false);
        f.in_hours = true;
        assert!(p.decide(&f).by_default);
    }

    #[test]
    fn bad_rules_are_load_errors_naming_the_rule() {
        let e = policy("[[rules]]\nname = \"r\"\nwhen = \"score('x') >\"\nthen = \"ignore\"\n")
            .unwrap_err();
        assert!(
            e.to_string().starts_with("policy rule `r`: cannot parse"),
            "{e}"
        );
        let e = policy("[[rules]]\nname = \"r\"\nwhen = \"true\"\nthen = \"route\"\n").unwrap_err();
        assert!(e.to_string().contains("needs `team"), "{e}");
        let e = policy("[[rules]]\nname = \"r\"\nwhen = \"colour == 'red'\"\nthen = \"ignore\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("`colour`"), "{e}");
    }

    #[test]
    fn a_rule_that_fails_at_runtime_is_skipped_with_the_reason() {
        let p = policy(
            "[[rules]]\nname = \"missing\"\nwhen = \"labels['nope'] > 0.5\"\nthen = \"ignore\"\n[[rules]]\nname = \"not-bool\"\nwhen = \"1 + 1\"\nthen = \"ignore\"\n",
        )
        .unwrap();
        let d = p.decide(&facts(&[]));
        assert!(d.by_default);
        assert_eq!(d.errors.len(), 2, "{:?}", d.errors);
        assert!(d.errors[0].starts_with("rule `missing`"));
        assert!(d.errors[1].contains("not a boolean"));
    }
}
