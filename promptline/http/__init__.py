"""HTTP plumbing shared by every route family: errors, JSON bodies, authentication."""
