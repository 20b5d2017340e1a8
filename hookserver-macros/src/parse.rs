//! Stage 1, parsing: the `#[webhook_endpoint(...)]` arguments as written (the syntax
//! only; what they mean is checked in `valid`).

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::{Error, Lit, LitStr, Result, Token};

mod kw {
    syn::custom_keyword!(path);
    syn::custom_keyword!(queue);
    syn::custom_keyword!(unchecked);
}

/// The filter keys, as written in the attribute.
pub(crate) const FILTER_KEYS: [&str; 3] = ["scope", "action", "repo_type"];

/// One filter key and its values, as written.
pub(crate) struct FilterArg {
    pub(crate) key: syn::Ident,
    pub(crate) values: Vec<FilterValue>,
}

/// A filter value: checked against the Hub's documented values unless `unchecked("..")`.
pub(crate) struct FilterValue {
    pub(crate) lit: LitStr,
    pub(crate) checked: bool,
}

/// What the attribute said: at most one path, with the literal kept for spans, and
/// whether the endpoint is queued.
#[derive(Default)]
pub(crate) struct EndpointArgs {
    pub(crate) path: Option<LitStr>,
    /// Where `queue` was written.
    pub(crate) queue: Option<Span>,
    /// `scope = ..`, `action = ..`, `repo_type = ..`.
    pub(crate) filters: Vec<FilterArg>,
}

impl EndpointArgs {
    /// Parses the attribute's tokens (what stands between the parentheses).
    pub(crate) fn parse_tokens(tokens: TokenStream) -> Result<Self> {
        Parser::parse2(Self::parse_all, tokens)
    }

    fn parse_all(input: ParseStream<'_>) -> Result<Self> {
        let mut args = EndpointArgs::default();
        let mut errors: Option<Error> = None;
        let mut push = |err: Error| match &mut errors {
            Some(all) => all.combine(err),
            None => errors = Some(err),
        };
        while !input.is_empty() {
            match parse_one(input) {
                Ok(Given::Path { key_span, value }) => {
                    if args.path.is_some() {
                        push(Error::new(
                            key_span,
                            "the path is given more than once; keep one `path = \"...\"` or one \"name\"",
                        ));
                    } else {
                        args.path = Some(value);
                    }
                }
                Ok(Given::Filter(filter)) => {
                    if args.filters.iter().any(|f| f.key == filter.key) {
                        push(Error::new(
                            filter.key.span(),
                            format!("`{}` is given more than once; list its values in one: `{} = [\"..\", \"..\"]`", filter.key, filter.key),
                        ));
                    } else {
                        args.filters.push(filter);
                    }
                }
                Ok(Given::Queue(span)) => {
                    if args.queue.is_some() {
                        push(Error::new(
                            span,
                            "`queue` is given more than once; keep one",
                        ));
                    } else {
                        args.queue = Some(span);
                    }
                }
                Err(err) => {
                    push(err);
                    // Skip to the next comma so that one mistake does not hide the others.
                    while !input.is_empty() && !input.peek(Token![,]) {
                        let _ = input.parse::<proc_macro2::TokenTree>();
                    }
                }
            }
            if input.is_empty() {
                break;
            }
            if let Err(err) = input.parse::<Token![,]>() {
                push(err);
                break;
            }
        }
        match errors {
            Some(err) => Err(err),
            None => Ok(args),
        }
    }
}

/// One argument: `"name"`, `path = "name"` or `queue`.
enum Given {
    Path { key_span: Span, value: LitStr },
    Queue(Span),
    Filter(FilterArg),
}

fn parse_one(input: ParseStream<'_>) -> Result<Given> {
    let lookahead = input.lookahead1();
    if lookahead.peek(Lit) {
        let lit: Lit = input.parse()?;
        let span = lit.span();
        return Ok(Given::Path {
            key_span: span,
            value: expect_str(lit)?,
        });
    }
    if lookahead.peek(kw::path) {
        let key: kw::path = input.parse()?;
        input.parse::<Token![=]>()?;
        let value = if input.peek(Lit) {
            expect_str(input.parse()?)?
        } else {
            let expr: syn::Expr = input.parse()?;
            return Err(Error::new_spanned(
                expr,
                "the path must be a string literal, like `path = \"say_hello\"`",
            ));
        };
        return Ok(Given::Path {
            key_span: key.span,
            value,
        });
    }
    if lookahead.peek(kw::queue) {
        let key: kw::queue = input.parse()?;
        if input.peek(Token![=]) || input.peek(syn::token::Paren) {
            return Err(Error::new(
                key.span,
                "`queue` takes no value: write `#[webhook_endpoint(queue)]`",
            ));
        }
        return Ok(Given::Queue(key.span));
    }
    if input.peek(syn::Ident) && FILTER_KEYS.iter().any(|k| input.peek_ident_is(k)) {
        let key: syn::Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let values = if input.peek(syn::token::Bracket) {
            let inside;
            syn::bracketed!(inside in input);
            let mut values = Vec::new();
            while !inside.is_empty() {
                values.push(filter_value(&inside)?);
                if inside.is_empty() {
                    break;
                }
                inside.parse::<Token![,]>()?;
            }
            if values.is_empty() {
                return Err(Error::new(
                    key.span(),
                    format!(
                        "`{key}` has no value; give one, or leave `{key}` out to take every one"
                    ),
                ));
            }
            values
        } else {
            vec![filter_value(input)?]
        };
        return Ok(Given::Filter(FilterArg { key, values }));
    }
    if input.peek(syn::Ident) {
        let ident: syn::Ident = input.parse()?;
        return Err(Error::new(
            ident.span(),
            format!(
                "unknown key `{ident}`; the keys are `path`, `queue`, `scope`, `action` and `repo_type`, as in `#[webhook_endpoint(path = \"say_hello\", queue, action = \"update\")]`"
            ),
        ));
    }
    let mut err = lookahead.error();
    err.combine(Error::new(
        input.span(),
        "expected `#[webhook_endpoint]`, `#[webhook_endpoint(\"name\")]`, `#[webhook_endpoint(path = \"name\")]` or `#[webhook_endpoint(queue)]`",
    ));
    Err(err)
}

/// `"value"` or `unchecked("value")`.
fn filter_value(input: ParseStream<'_>) -> Result<FilterValue> {
    if input.peek(kw::unchecked) {
        input.parse::<kw::unchecked>()?;
        let inside;
        syn::parenthesized!(inside in input);
        let lit: LitStr = inside.parse()?;
        return Ok(FilterValue {
            lit,
            checked: false,
        });
    }
    match input.parse::<Lit>() {
        Ok(Lit::Str(lit)) => Ok(FilterValue { lit, checked: true }),
        Ok(other) => Err(Error::new_spanned(
            other,
            "a filter value is a string literal, like `\"update\"`, or `unchecked(\"..\")`",
        )),
        Err(_) => Err(Error::new(
            input.span(),
            "a filter value is a string literal, like `\"update\"`, a list `[\"create\", \"update\"]`, or `unchecked(\"..\")`",
        )),
    }
}

/// Peeks whether the next token is the identifier `name`.
trait PeekIdent {
    fn peek_ident_is(&self, name: &str) -> bool;
}

impl PeekIdent for ParseStream<'_> {
    fn peek_ident_is(&self, name: &str) -> bool {
        self.fork()
            .parse::<syn::Ident>()
            .is_ok_and(|ident| ident == name)
    }
}

fn expect_str(lit: Lit) -> Result<LitStr> {
    match lit {
        Lit::Str(s) => Ok(s),
        other => Err(Error::new_spanned(
            other,
            "the path must be a string literal, like `\"say_hello\"`",
        )),
    }
}

impl Parse for EndpointArgs {
    fn parse(input: ParseStream<'_>) -> Result<Self> {
        Self::parse_all(input)
    }
}
