"""Integrations: the SDK middleware, the httpx transports and the proxy; they call the planner and
record each call through the tracker."""
