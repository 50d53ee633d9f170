"""Channel codes (渠道活码): creating and listing codes (`codes`), choosing the staff member
for a scan (`assignment`), the funnel of events (`funnel`), QR images (`qr`) and code
bundles for download (`code_export`).

May import: `core.platform`, `core.campaigns`.
"""
