//! Stage 2, validation: what the parsed attribute and item mean, checked. Every mistake
//! is collected, spanned on the user's token; what comes out is a validated [`Endpoint`]
//! or [`Launch`], which `expand` turns into code without checking anything again.

use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{Error, FnArg, Item, ItemFn, LitStr, Result, ReturnType, Signature, Type};

use crate::parse::EndpointArgs;

/// A fn that can be a webhook endpoint, and its path under `/webhooks/`.
pub(crate) struct Endpoint {
    pub(crate) func: ItemFn,
    /// Trimmed of `/` at both ends, checked.
    pub(crate) path: String,
    /// The fn's name, without `r#`.
    pub(crate) fn_name: String,
    /// `queue`: stored, answered 202, run by the inbox.
    pub(crate) queued: bool,
    /// The filter's scopes, actions and repository types (empty: any).
    pub(crate) filter: Option<[Vec<String>; 3]>,
}

/// What the Hub documents for each filter key (hookserver's `DOCUMENTED_SCOPES`,
/// `DOCUMENTED_ACTIONS`, `DOCUMENTED_REPO_TYPES`; `tests/ui/pass/filters.rs` uses each).
const DOCUMENTED: [(&str, &str, &[&str]); 3] = [
    (
        "scope",
        "scopes",
        &[
            "repo",
            "repo.content",
            "repo.config",
            "discussion",
            "discussion.comment",
        ],
    ),
    ("action", "actions", &["create", "update", "delete", "move"]),
    (
        "repo_type",
        "repository types",
        &["model", "dataset", "space"],
    ),
];

/// The filter's values by key, each checked value one the Hub documents.
fn check_filters(
    filters: &[crate::parse::FilterArg],
    errors: &mut Vec<Error>,
) -> Option<[Vec<String>; 3]> {
    if filters.is_empty() {
        return None;
    }
    let mut by_key: [Vec<String>; 3] = Default::default();
    for filter in filters {
        let index = DOCUMENTED
            .iter()
            .position(|(key, _, _)| filter.key == key)
            .expect("parsed keys are filter keys");
        let (key, plural, documented) = DOCUMENTED[index];
        for value in &filter.values {
            let text = value.lit.value();
            if value.checked && !documented.contains(&text.as_str()) {
                let closest = documented
                    .iter()
                    .map(|d| (strsim::levenshtein(d, &text), *d))
                    .min()
                    .filter(|(distance, _)| *distance <= 3)
                    .map(|(_, d)| format!("did you mean `\"{d}\"`? "))
                    .unwrap_or_default();
                errors.push(Error::new(
                    value.lit.span(),
                    format!(
                        "`\"{text}\"` is not one of the {plural} the Hub documents; {closest}the {plural} are {}; for a value the Hub added since, write `{key} = unchecked(\"{text}\")`",
                        documented.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            by_key[index].push(text);
        }
    }
    Some(by_key)
}

/// A `fn main` (or `async fn main`) that `#[hookserver::launch]` can wrap.
pub(crate) struct Launch {
    pub(crate) func: ItemFn,
}

/// Validates `#[webhook_endpoint(args)] item`, reporting the attribute's and the item's
/// mistakes together.
pub(crate) fn endpoint(args: Result<EndpointArgs>, item: TokenStream) -> Result<Endpoint> {
    let item = syn::parse2::<Item>(item).and_then(|item| {
        expect_fn(
            item,
            "webhook_endpoint",
            "`async fn name(payload: WebhookPayload)`",
        )
    });
    let (args, func) = match (args, item) {
        (Ok(args), Ok(func)) => (args, func),
        (Err(mut a), Err(b)) => {
            a.combine(b);
            return Err(a);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let fn_name = func
        .sig
        .ident
        .to_string()
        .trim_start_matches("r#")
        .to_owned();
    let mut errors = Vec::new();
    let path = match &args.path {
        Some(lit) => check_path(lit).map_err(|e| errors.push(e)).ok(),
        None => Some(fn_name.clone()),
    };
    if let Err(err) = check_endpoint_signature(&func.sig) {
        errors.push(err);
    }
    let filter = check_filters(&args.filters, &mut errors);
    combine(errors)?;
    Ok(Endpoint {
        func,
        path: path.unwrap_or_default(),
        fn_name,
        queued: args.queue.is_some(),
        filter,
    })
}

/// Validates `#[hookserver::launch(args)] item`.
pub(crate) fn launch(args: &TokenStream, item: TokenStream) -> Result<Launch> {
    let mut errors = Vec::new();
    if !args.is_empty() {
        errors.push(Error::new_spanned(
            args,
            "`#[hookserver::launch]` takes no arguments; configure the server in the body of `main`",
        ));
    }
    let func = match syn::parse2::<Item>(item)
        .and_then(|item| expect_fn(item, "hookserver::launch", "`fn main()`"))
    {
        Ok(func) => func,
        Err(err) => {
            errors.push(err);
            combine(errors)?;
            unreachable!("an error was pushed");
        }
    };
    let sig = &func.sig;
    if sig.ident != "main" {
        errors.push(Error::new_spanned(
            &sig.ident,
            "`#[hookserver::launch]` goes on `fn main`; to launch from another fn, call `hookserver::launch()`",
        ));
    }
    if !sig.inputs.is_empty() {
        errors.push(Error::new_spanned(
            &sig.inputs,
            "`fn main` takes no parameters; remove them",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(Error::new_spanned(
            &sig.generics.params,
            "`fn main` cannot be generic; remove the parameters",
        ));
    }
    combine(errors)?;
    Ok(Launch { func })
}

/// Validates `main!(input)`: it takes nothing.
pub(crate) fn main_bang(input: &TokenStream) -> Result<()> {
    if input.is_empty() {
        return Ok(());
    }
    Err(Error::new_spanned(
        input,
        "`main!()` takes no arguments; configure the server with `#[hookserver::launch]` on your own `fn main`",
    ))
}

/// Checks a path literal and returns it trimmed of `/` at both ends.
///
/// The rule is the runtime's too (`hookserver`'s `normalize_path`): a path is one or more
/// non-empty segments of visible ASCII other than `{`, `}`, `?`, `#`, `%` and `\`,
/// separated by `/`. A bad character is pointed at inside the message, under the path as
/// written (stable Rust cannot point a span inside a literal).
pub(crate) fn check_path(lit: &LitStr) -> Result<String> {
    let raw = lit.value();
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Err(Error::new(
            lit.span(),
            "the path is empty; write a name such as `\"say_hello\"`, or leave the parentheses out to use the fn's name",
        ));
    }
    let is_bad = |c: char| !c.is_ascii_graphic() || matches!(c, '{' | '}' | '?' | '#' | '%' | '\\');
    if let Some((at, bad)) = raw.char_indices().find(|(_, c)| is_bad(*c)) {
        let shown = if bad == ' ' {
            "a space".to_owned()
        } else {
            format!("`{}`", bad.escape_default())
        };
        return Err(Error::new(
            lit.span(),
            format!(
                "the path contains {shown}, here:\n{}\nuse letters, digits, `-`, `_`, `.` and `/` only, like `\"say_hello\"` (paths are fixed: no `{{param}}` segments)",
                caret_under(&raw, at)
            ),
        ));
    }
    if let Some(inside) = trimmed.find("//") {
        let lead = raw.len() - raw.trim_start_matches('/').len();
        return Err(Error::new(
            lit.span(),
            format!(
                "the path has an empty segment (`//`), here:\n{}\nwrite it as `\"a/b\"`",
                caret_under(&raw, lead + inside + 1)
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

/// The path as written (escaped as Rust would show it), and a caret under the character
/// at byte `at`.
fn caret_under(raw: &str, at: usize) -> String {
    let before: String = raw[..at].chars().flat_map(char::escape_default).collect();
    let shown: String = raw.chars().flat_map(char::escape_default).collect();
    let column = before.chars().count() + 1;
    format!("    \"{shown}\"\n    {}^", " ".repeat(column))
}

/// Returns the fn if the item is one, or an error spanned on the item's keyword.
fn expect_fn(item: Item, attr_name: &str, hint: &str) -> Result<ItemFn> {
    let item = match item {
        Item::Fn(func) => return Ok(func),
        other => other,
    };
    let (span, what) = match &item {
        Item::Struct(s) => (s.struct_token.span, "a struct"),
        Item::Enum(e) => (e.enum_token.span, "an enum"),
        Item::Union(u) => (u.union_token.span, "a union"),
        Item::Const(c) => (c.const_token.span, "a const"),
        Item::Static(s) => (s.static_token.span, "a static"),
        Item::Impl(i) => (i.impl_token.span, "an impl block"),
        Item::Mod(m) => (m.mod_token.span, "a module"),
        Item::Trait(t) => (t.trait_token.span, "a trait"),
        Item::Type(t) => (t.type_token.span, "a type alias"),
        Item::Use(u) => (u.use_token.span, "a use declaration"),
        Item::Fn(_) => (item.span(), "this item"),
        other => (other.span(), "this item"),
    };
    Err(Error::new(
        span,
        format!("`#[{attr_name}]` goes on a fn, not on {what}; write it above {hint}"),
    ))
}

/// Collects every reason why `sig` cannot be a webhook endpoint.
fn check_endpoint_signature(sig: &Signature) -> Result<()> {
    let mut errors: Vec<Error> = Vec::new();
    if let Some(unsafety) = &sig.unsafety {
        errors.push(Error::new(
            unsafety.span,
            "a webhook endpoint cannot be an `unsafe fn`; remove `unsafe` and use an `unsafe` block inside the body",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(Error::new_spanned(
            &sig.generics.params,
            "a webhook endpoint cannot be generic; use concrete types, such as `Json<MyEvent>` instead of `Json<T>`",
        ));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(Error::new_spanned(
            where_clause,
            "a webhook endpoint cannot have a `where` clause; use concrete types",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(Error::new_spanned(
            variadic,
            "a webhook endpoint cannot be variadic; list its parameters",
        ));
    }
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(receiver) => errors.push(Error::new_spanned(
                receiver,
                "a webhook endpoint cannot take `self`; make it a free fn outside the `impl` block",
            )),
            FnArg::Typed(typed) => {
                if let Some(err) = check_param_type(&typed.ty) {
                    errors.push(err);
                }
            }
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if contains_impl_trait(ty) && sig.asyncness.is_none() {
            errors.push(Error::new_spanned(
                ty,
                "a plain (non-async) webhook endpoint cannot return `impl Trait`; name the type, or make the fn `async`",
            ));
        }
    }
    combine(errors)
}

fn check_param_type(ty: &Type) -> Option<Error> {
    match ty {
        Type::Reference(reference) => Some(Error::new_spanned(
            reference,
            "a webhook parameter must be an owned value; write `String`, `Bytes`, `WebhookPayload` or `Json<T>` instead of a reference",
        )),
        Type::ImplTrait(_) => Some(Error::new_spanned(
            ty,
            "`impl Trait` parameters make the fn generic; name a concrete type such as `WebhookPayload` or `Json<MyEvent>`",
        )),
        Type::Infer(_) => Some(Error::new_spanned(
            ty,
            "a webhook parameter needs a type; write `WebhookPayload`, `HttpRequest`, `Json<T>`, `Bytes` or `String`",
        )),
        Type::Paren(inner) => check_param_type(&inner.elem),
        Type::Group(inner) => check_param_type(&inner.elem),
        _ => None,
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    quote::ToTokens::to_token_stream(ty)
        .into_iter()
        .any(|tt| matches!(&tt, proc_macro2::TokenTree::Ident(i) if i == "impl"))
}

/// Joins several errors into one, or `Ok` when there are none.
fn combine(errors: Vec<Error>) -> Result<()> {
    let mut iter = errors.into_iter();
    match iter.next() {
        None => Ok(()),
        Some(mut first) => {
            for err in iter {
                first.combine(err);
            }
            Err(first)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    fn message(path: &str) -> String {
        check_path(&LitStr::new(path, Span::call_site()))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn paths_are_trimmed_and_checked() {
        let ok = |path: &str| check_path(&LitStr::new(path, Span::call_site())).unwrap();
        assert_eq!(ok("/say_hello/"), "say_hello");
        assert_eq!(ok("a/b.c-d"), "a/b.c-d");
        assert!(message("").contains("empty"));
        assert!(message("///").contains("empty"));
    }

    #[test]
    fn the_caret_sits_under_the_bad_character() {
        let lines: Vec<String> = message("/say hello").lines().map(str::to_owned).collect();
        assert_eq!(lines[1], r#"    "/say hello""#);
        assert_eq!(lines[2].find('^'), Some(9));
        let tab = message("a\tb");
        let lines: Vec<&str> = tab.lines().collect();
        // Shown escaped: the caret is under the `\`.
        assert_eq!(lines[1], r#"    "a\tb""#);
        assert_eq!(lines[2].find('^'), Some(6));
        let double = message("a//b");
        let lines: Vec<&str> = double.lines().collect();
        assert_eq!(lines[2].find('^'), Some(7));
    }
}
