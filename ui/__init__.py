"""The Streamlit side: navigation, shared widgets and the server's HTTP routes."""
