"""Local emulation of the platform: backing servers, the Knative Eventing data plane, the runner."""
