"""Errors the harness raises on purpose, each with a message meant for the user."""


class HarnessError(Exception):
    """A problem the user can fix (bad config, missing dependency); printed as one line."""


class ConfigError(HarnessError):
    pass


class MissingDependencyError(HarnessError):
    pass


class BackendUnavailable(Exception):
    """The model backend could not answer after its retries: an infrastructure failure."""


class UserSimulatorError(Exception):
    """The simulated user produced something the harness cannot use."""


class ContextWindowExceeded(Exception):
    """The conversation no longer fits the model's context window: the model's failure, not infra."""
