"""The HTTP front door (`featurectl serve`): Feast's feature-server API over the SDK's online reader.

Like `cli/`, a thin driving adapter: it parses requests, calls `app.retrieval` and `app.push`
and shapes answers; it holds no business logic.
"""
