use super::*;

const FULL: &str = r#"{
    "event": {"action": "create", "scope": "discussion.comment"},
    "repo": {"type": "model", "name": "gpt2", "id": "621f", "private": false,
             "url": {"web": "https://huggingface.co/gpt2", "api": "https://huggingface.co/api/models/gpt2"},
             "owner": {"id": "628b"}, "head_sha": "abc", "tags": ["a", "b"]},
    "discussion": {"id": "6399", "title": "T", "url": {"web": "w"}, "status": "merged",
                   "author": {"id": "61d2"}, "num": 19, "isPullRequest": true, "pinned": true,
                   "changes": {"base": "refs/heads/main", "mergeCommitId": "def"}},
    "comment": {"id": "c1", "author": {"id": "61d2"}, "hidden": true, "url": {"web": "w"}},
    "webhook": {"id": "6390", "version": 3},
    "movedTo": {"name": "new/name", "owner": {"id": "o"}},
    "updatedRefs": [{"ref": "refs/heads/main", "oldSha": "1", "newSha": null}],
    "updatedConfig": {"private": true},
    "someFutureField": {"ignored": [1, 2, 3]}
}"#;

#[test]
fn parses_every_field() {
    let p: WebhookPayload = serde_json::from_str(FULL).unwrap();
    assert_eq!(p.event.action, Action::Create);
    assert_eq!(p.repo.head_sha.as_deref(), Some("abc"));
    assert_eq!(
        p.repo.tags.as_deref(),
        Some(&["a".to_owned(), "b".to_owned()][..])
    );
    let d = p.discussion.as_ref().unwrap();
    assert_eq!(d.status, DiscussionStatus::Merged);
    assert_eq!(
        d.changes.as_ref().unwrap().merge_commit_id.as_deref(),
        Some("def")
    );
    assert_eq!(d.pinned, Some(true));
    assert!(p.comment.as_ref().unwrap().hidden);
    assert_eq!(p.moved_to.as_ref().unwrap().owner.id, "o");
    assert_eq!(p.updated_refs.as_ref().unwrap()[0].new_sha, None);
    assert_eq!(p.updated_config, Some(serde_json::json!({"private": true})));
}

#[test]
fn serializes_back_to_hub_names() {
    let p: WebhookPayload = serde_json::from_str(FULL).unwrap();
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["repo"]["headSha"], "abc");
    assert!(v["repo"].get("head_sha").is_none());
    assert_eq!(v["discussion"]["isPullRequest"], true);
    assert_eq!(v["discussion"]["changes"]["mergeCommitId"], "def");
    assert_eq!(v["movedTo"]["name"], "new/name");
    assert_eq!(v["updatedRefs"][0]["newSha"], serde_json::Value::Null);
    assert_eq!(v["updatedConfig"]["private"], true);
    let again: WebhookPayload = serde_json::from_value(v).unwrap();
    assert_eq!(again, p);
}

#[test]
fn unknown_enum_values_are_kept() {
    let json = FULL
        .replace(r#""action": "create""#, r#""action": "archive""#)
        .replace(r#""type": "model""#, r#""type": "kernel""#)
        .replace(r#""status": "merged""#, r#""status": "locked""#);
    let p: WebhookPayload = serde_json::from_str(&json).unwrap();
    assert_eq!(p.event.action, Action::Other("archive".into()));
    assert_eq!(p.repo.r#type, RepoType::Other("kernel".into()));
    assert_eq!(
        p.discussion.as_ref().unwrap().status,
        DiscussionStatus::Other("locked".into())
    );
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["event"]["action"], "archive");
    assert_eq!(v["repo"]["type"], "kernel");
}

#[test]
fn known_values_never_land_in_other() {
    assert_eq!(Action::from("move"), Action::Move);
    assert_eq!("space".parse::<RepoType>().unwrap(), RepoType::Space);
    assert_eq!(DiscussionStatus::Draft.to_string(), "draft");
    assert_eq!(Action::Other("x".into()).as_str(), "x");
}

#[test]
fn refuses_other_versions() {
    for version in ["2", "4", "-1", "\"3\"", "3.5"] {
        let json = FULL.replace(r#""version": 3"#, &format!(r#""version": {version}"#));
        let err = serde_json::from_str::<WebhookPayload>(&json).unwrap_err();
        assert!(err.is_data(), "{version}: {err}");
    }
}

#[test]
fn missing_required_field_is_an_error() {
    let json = FULL.replace(r#""private": false,"#, "");
    let err = serde_json::from_str::<WebhookPayload>(&json).unwrap_err();
    assert!(err.to_string().contains("missing field `private`"), "{err}");
}

mod properties {
    use super::super::*;
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;

    /// A value outside the documented set (`Other`), or a documented one.
    fn open<T>(known: &'static [&'static str]) -> impl Strategy<Value = T> + Clone
    where
        T: for<'a> From<&'a str> + std::fmt::Debug,
    {
        prop_oneof![
            proptest::sample::select(known).prop_map(|s| T::from(s)),
            ".*".prop_filter("an undocumented value", move |s| !known
                .contains(&s.as_str()))
                .prop_map(|s| T::from(s.as_str())),
        ]
    }

    fn text() -> impl Strategy<Value = String> + Clone {
        // Any Unicode, escapes and all.
        ".{0,40}"
    }

    fn object_id() -> impl Strategy<Value = ObjectId> + Clone {
        text().prop_map(|id| ObjectId { id })
    }

    fn url() -> impl Strategy<Value = PayloadUrl> + Clone {
        (text(), option::of(text())).prop_map(|(web, api)| PayloadUrl { web, api })
    }

    prop_compose! {
        fn repo()(
            id in text(), owner in object_id(), head_sha in option::of(text()),
            name in text(), private in any::<bool>(), subdomain in option::of(text()),
            tags in option::of(vec(text(), 0..4)),
            kind in open::<RepoType>(&["dataset", "model", "space"]), url in url(),
        ) -> Repo {
            Repo { id, owner, head_sha, name, private, subdomain, tags, r#type: kind, url }
        }
    }

    prop_compose! {
        fn discussion()(
            id in text(), num in any::<u64>(), author in object_id(), url in url(),
            title in text(), is_pull_request in any::<bool>(),
            status in open::<DiscussionStatus>(&["closed", "draft", "open", "merged"]),
            changes in option::of((text(), option::of(text()))),
            pinned in option::of(any::<bool>()),
        ) -> Discussion {
            Discussion {
                id, num, author, url, title, is_pull_request, status,
                changes: changes.map(|(base, merge_commit_id)| DiscussionChanges { base, merge_commit_id }),
                pinned,
            }
        }
    }

    prop_compose! {
        fn comment()(
            id in text(), author in object_id(), hidden in any::<bool>(),
            content in option::of(text()), url in url(),
        ) -> Comment {
            Comment { id, author, hidden, content, url }
        }
    }

    /// `updatedConfig`: any JSON object (a `null` would read back as absent).
    fn config() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            text().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
        ];
        let value = leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(text(), inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        });
        proptest::collection::btree_map(text(), value, 0..4)
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
    }

    prop_compose! {
        fn payload()(
            action in open::<Action>(&["create", "delete", "move", "update"]),
            scope in text(), repo in repo(),
            discussion in option::of(discussion()), comment in option::of(comment()),
            webhook_id in text(),
            moved_to in option::of((text(), object_id())),
            updated_refs in option::of(vec((text(), option::of(text()), option::of(text())), 0..3)),
            updated_config in option::of(config()),
        ) -> WebhookPayload {
            WebhookPayload {
                event: Event { action, scope },
                repo,
                discussion,
                comment,
                webhook: WebhookInfo { id: webhook_id, version: SUPPORTED_VERSION },
                moved_to: moved_to.map(|(name, owner)| MovedTo { name, owner }),
                updated_refs: updated_refs.map(|refs| {
                    refs.into_iter()
                        .map(|(r#ref, old_sha, new_sha)| UpdatedRef { r#ref, old_sha, new_sha })
                        .collect()
                }),
                updated_config,
            }
        }
    }

    proptest! {
        /// Any payload serializes to the Hub's JSON and parses back to itself.
        #[test]
        fn any_payload_round_trips(payload in payload()) {
            let json = serde_json::to_vec(&payload).unwrap();
            let back = WebhookPayload::from_slice(&json)
                .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&json)));
            prop_assert_eq!(back, payload);
        }

        /// Any bytes: a payload or a 400/422 rejection, never a panic.
        #[test]
        fn any_bytes_parse_or_are_refused(bytes in vec(any::<u8>(), 0..512)) {
            if let Err(err) = WebhookPayload::from_slice(&bytes) {
                let status = actix_web::ResponseError::status_code(&err).as_u16();
                prop_assert!(status == 400 || status == 422, "{}", status);
            }
        }
    }
}
