"""Channel codes (渠道活码): creating and listing codes (`codes`), choosing the staff member
for a scan (`assignment`), the funnel of events (`funnel`), QR images (`qr`) and code
bundles for download (`code_export`), changing a code afterwards (`code_edits`), and the
live WeCom loop (`wecom/`: crypto, client, callbacks, outbox; `wecom_queue` is what the
other modules queue for it).

May import: `core.platform`, `core.campaigns`.
"""
