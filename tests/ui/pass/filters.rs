use hookserver::webhook_endpoint;

// Every value the Hub documents, for each key (the macro's list and the runtime's agree).
#[webhook_endpoint(
    scope = ["repo", "repo.content", "repo.config", "discussion", "discussion.comment"],
    action = ["create", "update", "delete", "move"],
    repo_type = ["model", "dataset", "space"]
)]
async fn everything() {}

#[webhook_endpoint("one", queue, action = "update", repo_type = unchecked("collection"))]
async fn one() {}

#[webhook_endpoint(action = [unchecked("archive"), "create"])]
fn plain() {}

fn main() {
    assert_eq!(hookserver::DOCUMENTED_SCOPES.len(), 5);
    assert_eq!(hookserver::DOCUMENTED_ACTIONS.len(), 4);
    assert_eq!(hookserver::DOCUMENTED_REPO_TYPES.len(), 3);
}
