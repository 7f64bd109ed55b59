"""The app plane: Odoo, PostgreSQL and the Caddy TLS proxy on the client host, with its
certificates, SSO, outside connections and incident channel. Renderers are pure functions."""
