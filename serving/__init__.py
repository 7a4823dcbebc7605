"""Online scoring: gRPC server, behaviour store, A/B routing. Never imports training code."""
