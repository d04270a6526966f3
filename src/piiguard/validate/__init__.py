"""Format and check-digit validators, one module per family of kinds.

Each ``check_*`` function returns the normalised value, or an :class:`~piiguard.InvalidPII`
that it does not raise: raising is left to :meth:`piiguard.PIIKind.normalise`, the one place
that also keeps the refused value out of the traceback's locals.
"""

from piiguard.validate.cards import card_scheme
from piiguard.validate.cn_ric import (
    check_cn_resident_id,
    cn_resident_id_birth_date,
    cn_resident_id_check_char,
    shaped_like_cn_resident_id,
    upgrade_legacy_cn_id,
)
from piiguard.validate.documents import check_cn_license_plate, check_cn_passport
from piiguard.validate.email import check_email
from piiguard.validate.luhn import check_bank_card, luhn_valid
from piiguard.validate.network import check_ipv4, check_ipv6
from piiguard.validate.personal import check_address, check_date_of_birth, check_person_name
from piiguard.validate.phone import check_phone, is_cn_mobile

__all__ = [
    "card_scheme",
    "check_address",
    "check_bank_card",
    "check_cn_license_plate",
    "check_cn_passport",
    "check_cn_resident_id",
    "check_date_of_birth",
    "check_email",
    "check_ipv4",
    "check_ipv6",
    "check_person_name",
    "check_phone",
    "cn_resident_id_birth_date",
    "cn_resident_id_check_char",
    "is_cn_mobile",
    "luhn_valid",
    "shaped_like_cn_resident_id",
    "upgrade_legacy_cn_id",
]
