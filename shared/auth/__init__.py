"""Identity and access: signing keys, access tokens, their verification, and the role matrix."""
