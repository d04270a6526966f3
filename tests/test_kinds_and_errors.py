"""The kind registry and the exception tree."""

from __future__ import annotations

import pytest

import piiguard as pg
from piiguard import Category, PIIKind

SENSITIVE = {
    "cn_resident_id",
    "cn_passport",
    "bank_card",
    "biometric",
    "health",
    "location",
    "religion",
    "specific_identity",
}


def test_sensitivity_follows_pipl_article_28() -> None:
    """ID numbers, financial accounts, biometrics, health, whereabouts, religion and specific
    identity are sensitive; contact and basic information are not."""
    assert {name for name, kind in pg.BUILTIN_KINDS.items() if kind.sensitive} == SENSITIVE


def test_required_kinds_exist() -> None:
    """The kinds the foundation promises are all registered."""
    required = {
        "phone",
        "email",
        "cn_resident_id",
        "bank_card",
        "person_name",
        "address",
        "date_of_birth",
        "ipv4",
        "ipv6",
        "cn_passport",
        "cn_license_plate",
        "biometric",
        "health",
        "location",
        "religion",
    }
    assert required <= set(pg.BUILTIN_KINDS)


def test_get_kind_by_name_or_object() -> None:
    """A name looks up the built-in kind; a PIIKind is returned as it is."""
    custom = PIIKind("member_no", Category.IDENTITY, False)
    assert pg.get_kind("phone").category is Category.CONTACT
    assert pg.get_kind(custom) is custom
    with pytest.raises(pg.UnknownKind, match="'telephone'"):
        pg.get_kind("telephone")
    with pytest.raises(pg.UnknownKind, match="not a valid name"):
        pg.get_kind(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "category"),
    [("Phone", Category.CONTACT), ("my kind", Category.BASIC), ("ok", "basic")],
)
def test_kinds_are_checked_when_built(name: str, category: object) -> None:
    """Kind names are lower-case identifiers and categories are Category members."""
    with pytest.raises((ValueError, TypeError)):
        PIIKind(name, category, False)  # type: ignore[arg-type]


def test_is_valid_and_normalise() -> None:
    """The module-level helpers accept names and kinds."""
    assert pg.is_valid("13812345678", "phone")
    assert not pg.is_valid("1381234567", pg.get_kind("phone"))
    assert pg.normalise("13812345678", "phone") == "+8613812345678"


def test_exception_tree() -> None:
    """Every error derives from PiiGuardError; each also has its standard base."""
    assert issubclass(pg.InvalidPII, pg.PiiGuardError)
    assert issubclass(pg.InvalidPII, ValueError)
    assert issubclass(pg.UnknownKind, LookupError)
    assert issubclass(pg.UnknownRole, pg.PolicyViolation)
    assert issubclass(pg.UnknownRole, LookupError)


def test_invalid_pii_carries_kind_code_and_message() -> None:
    """The attributes callers branch on, and a message built from them only."""
    error = pg.InvalidPII("phone", "format", "not a phone number")
    assert (error.kind, error.code, error.message) == ("phone", "format", "not a phone number")
    assert str(error) == "invalid phone: not a phone number"


def test_sensitivity_names_the_text_that_makes_it_so() -> None:
    """ID and passport numbers are sensitive by GB/T 35273-2020 Annex B, not by PIPL Art. 28."""
    from piiguard.kinds import GBT_35273_ANNEX_B, PIPL_ART_28

    assert pg.get_kind("cn_resident_id").sensitive_by == GBT_35273_ANNEX_B
    assert pg.get_kind("cn_passport").sensitive_by == GBT_35273_ANNEX_B
    assert pg.get_kind("bank_card").sensitive_by.startswith(PIPL_ART_28)
    assert pg.get_kind("health").sensitive_by == PIPL_ART_28
    assert pg.get_kind("phone").sensitive_by == ""
    assert PIIKind("own", Category.HEALTH, sensitive=True).sensitive_by == PIPL_ART_28
    with pytest.raises(ValueError, match="sensitive_by"):
        PIIKind("own", Category.BASIC, sensitive=False, sensitive_by=PIPL_ART_28)


def test_legal_bases_are_the_items_of_pipl_article_13() -> None:
    from piiguard.consent.purposes import BASES, BASIS_ARTICLES

    assert set(BASIS_ARTICLES) == BASES
    assert [
        BASIS_ARTICLES[b].split(":")[0]
        for b in sorted(BASES, key=lambda basis: BASIS_ARTICLES[basis])
    ] == [f"PIPL Art. 13(1)({item})" for item in (1, 2, 2, 3, 4, 5, 6, 7)]
    for basis in ("human_resources", "other_law", "news_reporting"):
        assert pg.Purpose("p", basis=basis, kinds=["email"]).basis == basis  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="news_reporting"):
        pg.Purpose("p", basis="public_interest", kinds=["email"])  # type: ignore[arg-type]


def _one_of_each() -> list[pg.PiiGuardError]:
    return [
        pg.InvalidPII("phone", "format", "not a phone number"),
        pg.UnknownKind("telephone"),
        pg.UnknownRole("intern"),
        pg.DecryptionError(),
        pg.KeyDestroyed(),
        pg.KeyNotFound(7),
        pg.ConsentRequired({"sms"}),
        pg.UnknownPurpose("sms"),
        pg.UnknownNotice("v9"),
        pg.TokenNotFound(),
        pg.TokenExpired(),
        pg.KeyProviderError("down"),
        pg.WrappedKeyInvalid("damaged"),
        pg.InsecureKeyFile("mode"),
        pg.InvalidArgument("subject is a non-empty str"),
        pg.EventNotRecorded(OSError("disk")),
        pg.StoreError("cannot open the store", "refused"),
        pg.StoreBusy(),
        pg.PolicyViolation("bundled"),
    ]


@pytest.mark.parametrize("error", _one_of_each(), ids=lambda error: type(error).__name__)
def test_every_error_pickles_to_itself(error: pg.PiiGuardError) -> None:
    """A worker process's error reaches its parent: multiprocessing hung on StoreBusy, whose
    __init__ takes no message (found when a CI run hung)."""
    import pickle

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)
