"""Posters (海报): templates as data (`templates`), fonts, wrapping and sizing text
(`text_fit`), drawing one poster (`render`), batches in a process pool (`batch`), and the
studio that ties them to campaigns, channel codes and permissions (`studio`).

May import: `core.platform`, `core.campaigns`, `core.channels`.
"""
