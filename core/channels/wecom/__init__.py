"""The live WeCom (企业微信) loop: message crypto for the callback, the API client, the
callback handler that turns events into channel events, and the outbox that runs the slow
calls (contact ways, welcome messages, tags, hand-overs) in the background.

Without the WECOM_* settings nothing here runs and the app works as before."""
