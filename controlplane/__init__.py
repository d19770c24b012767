"""The control plane: tenancy, prompts, versions, deployments and resolve."""
