"""SecretBytes, as the crypto recipes name it (defined in keys/, the lowest key layer)."""

from piiguard.keys.secret import SecretBytes

__all__ = ["SecretBytes"]
