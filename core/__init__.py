"""Domain services of 邮惠运营工作台: plain Python, no Streamlit.

Pages and the CLI call these functions with the acting user; each function that changes
data checks permission and scope, validates, writes in one transaction and audits.
"""
