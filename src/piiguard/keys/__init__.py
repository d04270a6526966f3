"""Key-encryption keys: where the keys that wrap piiguard's data keys live.

``LocalKEK`` (a 0600 file), ``Pkcs11KEK`` (an HSM over PKCS#11, extra ``hsm``) and
``AwsKmsKEK`` (AWS KMS, extra ``aws``) all satisfy the two-method ``KEKProvider`` Protocol,
and each keeps epoch objects (``EpochKeyHolder``) outside the store: an ``EpochKeyFile`` beside
the local key file, token objects in the HSM, KMS keys.
"""

from piiguard.keys.aws import AwsKmsKEK
from piiguard.keys.epoch_file import EpochKeyFile
from piiguard.keys.local import LocalKEK
from piiguard.keys.pkcs11 import Pkcs11KEK
from piiguard.keys.protocol import EpochKeyHolder, KEKProvider
from piiguard.keys.uri import kek_from_uri

__all__ = [
    "AwsKmsKEK",
    "EpochKeyFile",
    "EpochKeyHolder",
    "KEKProvider",
    "LocalKEK",
    "Pkcs11KEK",
    "kek_from_uri",
]
