"""The demo province (演示数据): org tree, accounts, a year of metrics, campaigns in every
review state, merchants, channel codes and their events. It creates only what is missing,
through the same services users call, so it sits above every domain room.

May import: every room of `core` but `cli` and `bootstrap`.
"""
