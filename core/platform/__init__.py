"""Platform: what every domain stands on.

Settings, time (Asia/Shanghai), errors, number and date formats, periods, the bounded file
reader (`tabular`, `xlsx_reader`) and the one export encoder (`export`), accounts (`auth`,
`users`, `ratelimit`), who may do what (`permissions`, `references`), the audit log, the org
tree and its import (`org`, `org_import`, `directory`), and notifications.

May import: `db` and third-party libraries only, never another room of `core`.
"""
