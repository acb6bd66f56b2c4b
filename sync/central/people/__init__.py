"""People: dashboard logins' roles and site scopes, passwords, TOTP and set-password links."""
