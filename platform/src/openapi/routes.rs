//! A service's routes and their documentation from one declaration: each
//! route is registered with its [`Op`], so the router serves exactly the
//! operations the document lists (nothing to check by reading source).

use super::Op;
use axum::handler::Handler;
use axum::routing::on;
use axum::Router;

/// A router and the operations it serves.
#[derive(Debug)]
pub struct Routes<S> {
    router: Router<S>,
    ops: Vec<Op>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes {
            router: Router::new(),
            ops: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    /// No routes yet.
    pub fn new() -> Self {
        Routes::default()
    }

    /// Serves `handler` at `op`'s method and path, documented as `op` says.
    pub fn route<H, T>(mut self, op: Op, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.router = self.router.route(op.path(), on(op.method_filter(), handler));
        self.ops.push(op);
        self
    }

    /// The operations, in the order they were routed.
    pub fn operations(&self) -> &[Op] {
        &self.ops
    }

    /// The router and the operations.
    pub fn into_parts(self) -> (Router<S>, Vec<Op>) {
        (self.router, self.ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn status(router: &Router, method: &str, path: &str) -> StatusCode {
        let request = Request::builder().method(method).uri(path).body(Body::empty()).expect("request");
        router.clone().oneshot(request).await.expect("answer").status()
    }

    #[tokio::test]
    async fn each_operation_is_served_at_its_method_and_path_and_nothing_else_is() {
        let routes = Routes::<()>::new()
            .route(Op::get("/a", "getA", "t", "A"), || async { "a" })
            .route(Op::post("/a", "postA", "t", "A"), || async { StatusCode::CREATED })
            .route(Op::delete("/b/{id}", "deleteB", "t", "B"), || async { StatusCode::NO_CONTENT });
        let documented: Vec<(&str, &str)> = routes.operations().iter().map(|o| (o.method(), o.path())).collect();
        assert_eq!(documented, [("get", "/a"), ("post", "/a"), ("delete", "/b/{id}")]);
        let (router, _) = routes.into_parts();
        assert_eq!(status(&router, "GET", "/a").await, StatusCode::OK);
        assert_eq!(status(&router, "POST", "/a").await, StatusCode::CREATED);
        assert_eq!(status(&router, "DELETE", "/b/7").await, StatusCode::NO_CONTENT);
        assert_eq!(status(&router, "DELETE", "/a").await, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(status(&router, "GET", "/c").await, StatusCode::NOT_FOUND);
    }
}
