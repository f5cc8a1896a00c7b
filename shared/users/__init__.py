"""The users service's domain: accounts and passwords, devices, service clients, sessions, OAuth grants."""
