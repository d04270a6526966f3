"""piiguard.integrations.django with Django's own test client, on SQLite and PostgreSQL
(the application's database), piiguard's store beside it."""

from __future__ import annotations

import copy as copy_module
import pickle
import tempfile
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings

SCHEMA = f"djtest_{uuid.uuid4().hex[:10]}"
if not settings.configured:
    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(Path(tempfile.mkdtemp()) / "shop.db"),
            },
            "pg": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "test",
                "USER": "postgres",
                "HOST": "127.0.0.1",
                "PORT": "5432",
                "OPTIONS": {"options": f"-c search_path={SCHEMA}"},
            },
        },
        INSTALLED_APPS=["tests.orm.djangoapp"],
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        # what override_settings(TIME_ZONE=...) restores the process's zone to afterwards
        # (os.environ["TZ"], time.tzset()): Django's default, America/Chicago, would move
        # date.today() of every later test in the run a day back for six hours each night
        TIME_ZONE="UTC",
        ALLOWED_HOSTS=["testserver"],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()

from django import forms  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

import piiguard as pg  # noqa: E402
from piiguard.integrations import django as pg_dj  # noqa: E402
from piiguard.keys import LocalKEK  # noqa: E402
from piiguard.testing import allow_test_reveals  # noqa: E402
from tests.backends import POSTGRES_URL, postgres_schema  # noqa: E402
from tests.helpers import CANARY_ID, CANARY_PHONE, piiguard_frames_text  # noqa: E402
from tests.orm.djangoapp.models import Address, Customer, VipCustomer  # noqa: E402

TESTING = {"actor": "tester", "purpose": "testing"}


@pytest.fixture(params=["default", "pg"])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """The application's database, with its tables made (and dropped afterwards)."""
    if request.param == "pg":
        with postgres_schema():  # skips, or fails in CI, when PostgreSQL is not there
            connection = connections["pg"]
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
            yield from _tables("pg")
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
            connection.close()
        return
    yield from _tables("default")


def _tables(name: str) -> Iterator[str]:
    connection = connections[name]
    with connection.schema_editor() as editor:
        editor.create_model(Customer)
        editor.create_model(Address)
        editor.create_model(VipCustomer)
    try:
        yield name
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(VipCustomer)
            editor.delete_model(Address)
            editor.delete_model(Customer)


@pytest.fixture
def shop(guard: pg.Guard, alias: str) -> str:
    allow_test_reveals(guard)
    pg_dj.install(guard)
    return alias


def _raw(alias: str) -> str:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT * FROM djangoapp_customer")
        rows = cursor.fetchall()
        cursor.execute("SELECT * FROM djangoapp_address")
        return repr(rows + cursor.fetchall())


def test_values_are_stored_encrypted_bound_to_their_row(shop: str, guard: pg.Guard) -> None:
    customer = Customer(user_id="customer-1", phone=CANARY_PHONE, id_number=CANARY_ID)
    customer.save(using=shop)  # a server-side key: sealed right after the INSERT
    Address(code="a-1", user_id="customer-1", line="北京市朝阳区建国路88号").save(using=shop)
    stored = _raw(shop)
    assert CANARY_PHONE not in stored
    assert CANARY_ID not in stored
    assert "138****5678" in stored
    fresh = Customer.objects.using(shop).get(pk=customer.pk)
    assert fresh.phone_masked == "138****5678"  # list pages: no reveal
    with pytest.raises(pg.AccessDenied):
        _ = fresh.phone
    with pg.acting(**TESTING):
        assert (fresh.phone, fresh.id_number) == (CANARY_PHONE, CANARY_ID)
        assert Address.objects.using(shop).get(pk="a-1").line == "北京市朝阳区建国路88号"
    assert [e.actor for e in guard.audit.events(action="decrypt") if e.result == "ok"] == [
        "tester"
    ] * 3


def test_many_rows_open_in_one_audited_batch_and_lookup_finds_any_spelling(
    shop: str, guard: pg.Guard
) -> None:
    phones = [f"1381234{n:04d}" for n in range(6)]
    for n, phone in enumerate(phones):
        Customer(user_id=f"customer-{n}", phone=phone).save(using=shop)
    rows = list(Customer.objects.using(shop).order_by("pk"))
    with pg.acting(**TESTING):
        assert pg_dj.open_all(rows, "phone") == phones
    (event,) = [e for e in guard.audit.events(action="decrypt") if e.result == "ok"]
    assert event.count == 6
    found = Customer.objects.using(shop).filter(pg_dj.lookup(Customer, "phone", "138 1234 0003"))
    assert [c.user_id for c in found] == ["customer-3"]
    with pytest.raises(pg.InvalidPII) as caught:
        pg_dj.lookup(Customer, "phone", CANARY_ID)
    assert CANARY_ID not in piiguard_frames_text(caught.value)


def _copy_phone(alias: str, source: int, target: int) -> None:
    """What an insider with SQL access does: copy one row's ciphertext into another row."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "UPDATE djangoapp_customer SET phone = (SELECT phone FROM djangoapp_customer "
            "WHERE id = %s) WHERE id = %s",
            [source, target],
        )


def _decrypts(guard: pg.Guard) -> list[int]:
    return [e.count for e in guard.audit.events(action="decrypt") if e.result == "ok"]


def test_the_rows_of_one_query_open_together_at_the_first_read(shop: str, guard: pg.Guard) -> None:
    """Reading a field of one row opens it in every row its query loaded (one audited
    batch); rows of another query wait for their own read; each field opens on its own."""
    phones = [f"1381234{n:04d}" for n in range(6)]
    for n, phone in enumerate(phones):
        Customer(user_id=f"customer-{n}", phone=phone, id_number=CANARY_ID).save(using=shop)
    first = list(Customer.objects.using(shop).order_by("pk")[:4])
    second = list(Customer.objects.using(shop).order_by("pk")[4:])
    with pg.acting(**TESTING):
        assert first[2].phone == phones[2]
        assert _decrypts(guard) == [4]
        assert [c.phone for c in first] == phones[:4]  # opened already: no new event
        assert _decrypts(guard) == [4]
        assert [c.phone for c in second] == phones[4:]
        assert first[0].id_number == CANARY_ID
    assert _decrypts(guard) == [4, 2, 4]
    (event,) = [e for e in guard.audit.events(action="decrypt") if e.count == 2]
    assert len(event.detail["rows"]) == 2
    assert CANARY_PHONE not in repr(list(guard.audit.events()))


def test_a_row_that_does_not_open_does_not_keep_its_query_from_opening(
    shop: str, guard: pg.Guard
) -> None:
    good, copied = (
        Customer(user_id="customer-1", phone=CANARY_PHONE),
        Customer(user_id="customer-2", phone="13912345678"),
    )
    good.save(using=shop)
    copied.save(using=shop)
    _copy_phone(shop, good.pk, copied.pk)
    rows = list(Customer.objects.using(shop).order_by("pk"))
    with pg.acting(**TESTING):
        assert rows[0].phone == CANARY_PHONE  # the batch fails, this row opens alone
        with pytest.raises(pg.DecryptionError) as refused:
            _ = rows[1].phone
    assert CANARY_PHONE not in piiguard_frames_text(refused.value)


def test_a_subclass_with_a_from_db_of_its_own_batches_its_rows_too(
    shop: str, guard: pg.Guard
) -> None:
    """Multi-table inheritance: the parent's fields and the child's open per query, and
    the model's own from_db still runs."""
    for n in range(3):
        VipCustomer(user_id=f"vip-{n}", phone=f"1391234567{n}", card="6222021234567890128").save(
            using=shop
        )
    rows = list(VipCustomer.objects.using(shop).order_by("pk"))
    assert all(row.loaded_by_own_from_db for row in rows)
    with pg.acting(**TESTING):
        assert rows[1].card == "6222021234567890128"
        assert rows[2].phone == "13912345672"
    assert _decrypts(guard) == [3, 3]


def test_a_copied_ciphertext_does_not_open_and_plain_updates_are_refused(
    shop: str, guard: pg.Guard
) -> None:
    first = Customer(user_id="customer-1", phone=CANARY_PHONE)
    first.save(using=shop)
    second = Customer(user_id="customer-2", phone="13912345678")
    second.save(using=shop)
    _copy_phone(shop, first.pk, second.pk)
    with pg.acting(**TESTING), pytest.raises(pg.DecryptionError):
        _ = Customer.objects.using(shop).get(pk=second.pk).phone
    with pytest.raises(pg.InvalidArgument) as refused:
        Customer.objects.using(shop).filter(pk=first.pk).update(phone=CANARY_PHONE)
    assert CANARY_PHONE not in piiguard_frames_text(refused.value)
    assert CANARY_PHONE not in _raw(shop)


def test_erasure_and_export_reach_the_model(shop: str, guard: pg.Guard) -> None:
    pg_dj.participate(Customer, subject="user_id", erase="clear", using=shop)
    Customer(user_id="customer-1", phone=CANARY_PHONE).save(using=shop)
    Customer(user_id="customer-2", phone="13912345678").save(using=shop)
    exported = guard.export("customer-1", **TESTING)
    assert exported["djangoapp_customer"][0]["phone"] == CANARY_PHONE
    guard.erase("customer-1")
    left = list(Customer.objects.using(shop).order_by("pk"))
    assert (left[0].phone_masked, left[0].phone_index) == (None, None)
    with pg.acting(**TESTING):
        assert left[0].phone is None
        assert left[1].phone == "13912345678"


@pg_dj.consent("marketing_sms", subject=lambda request: request.headers.get("X-Customer"))
def promo(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"sent": True})


@pg_dj.acting("testing", actor=lambda request: request.headers.get("X-Staff"))
def who(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"acting": list(pg.current_acting() or ())})


urlpatterns = [path("promo", promo), path("who", who)]


def test_views_run_only_with_consent_and_an_actor(shop: str, guard: pg.Guard) -> None:
    guard.consent.register(pg.Purpose("marketing_sms", basis="consent", kinds={"phone"}))
    guard.consent.publish_notice("n1", purposes=["marketing_sms"], text="SMS offers")
    guard.consent.grant("customer-1", "marketing_sms", notice="n1")
    client = Client()
    assert client.get("/promo", headers={"X-Customer": "customer-1"}).json() == {"sent": True}
    refused = client.get("/promo", headers={"X-Customer": "customer-2"})
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["missing_purposes"] == ["marketing_sms"]
    assert client.get("/promo").status_code == 403
    assert client.get("/who", headers={"X-Staff": "cs-7"}).json() == {"acting": ["cs-7", "testing"]}
    assert client.get("/who").status_code == 403
    assert client.get("/who", headers={"X-Staff": "x" * 300}).status_code == 403


def test_the_guard_comes_from_settings(tmp_path: Path) -> None:
    """settings.PIIGUARD holds Guard.from_env's variables without their prefix."""
    saved: dict[str, Any] = dict(pg_dj._INSTALLED)
    pg_dj._INSTALLED.clear()
    try:
        settings.PIIGUARD = {
            "STORE_URL": f"sqlite:///{tmp_path / 'piiguard.db'}",
            "KEK": f"file:{tmp_path / 'kek.key'}",
        }
        opened = pg_dj.guard()
        assert opened is pg_dj.guard()
        assert opened.encrypt(CANARY_PHONE, context={"t": "x"})
        opened.close()
        pg_dj._INSTALLED.clear()
        settings.PIIGUARD = {"STORE_URL": f"sqlite:///{tmp_path / 'p2.db'}", "KEK": "vault:x"}
        with pytest.raises(pg.InvalidArgument) as caught:
            pg_dj.guard()
        assert "PIIGUARD_KEK" in str(caught.value)
    finally:
        del settings.PIIGUARD
        pg_dj._INSTALLED.clear()
        pg_dj._INSTALLED.update(saved)


def test_bulk_create_with_database_chosen_keys_is_refused_and_with_keys_seals(
    shop: str, guard: pg.Guard
) -> None:
    """bulk_create sends no post_save: a row whose key the database chooses could never be
    sealed (its placeholder would stay). With keys given, every value is sealed."""
    with pytest.raises(pg.InvalidArgument):
        Customer.objects.using(shop).bulk_create([Customer(user_id="c", phone=CANARY_PHONE)])
    assert Customer.objects.using(shop).count() == 0
    Address.objects.using(shop).bulk_create(
        [Address(code=f"a-{n}", user_id="c", line="北京市朝阳区建国路88号") for n in range(3)]
    )
    with pg.acting(**TESTING):
        lines = pg_dj.open_all(list(Address.objects.using(shop).order_by("code")), "line")
    assert lines == ["北京市朝阳区建国路88号"] * 3


# -- found by the attack review of the Django integration ---------------------------------


def test_expressions_and_pattern_lookups_never_carry_a_value(shop: str, guard: pg.Guard) -> None:
    from django.core.exceptions import FieldError
    from django.db.models import F, Value
    from django.db.models.functions import Concat, Upper

    customer = Customer(user_id="customer-1", phone="13912345678")
    customer.save(using=shop)
    rows = Customer.objects.using(shop).filter(pk=customer.pk)
    for expression in (
        Value(CANARY_PHONE),
        Concat(Value(CANARY_PHONE), Value("")),
        Upper(Value(CANARY_ID)),
        F("user_id"),
    ):
        with pytest.raises(pg.InvalidArgument):
            rows.update(phone=expression)
    for pattern in ("contains", "icontains", "iexact", "startswith", "regex"):
        with pytest.raises(FieldError) as refused:
            list(Customer.objects.using(shop).filter(**{f"phone__{pattern}": CANARY_PHONE}))
        assert CANARY_PHONE not in str(refused.value)
    assert CANARY_PHONE not in _raw(shop)
    assert CANARY_ID not in _raw(shop)


def test_a_subject_change_reseals_what_was_read_and_refuses_the_rest(
    shop: str, guard: pg.Guard
) -> None:
    from tests.orm.djangoapp.models import RegularCustomer

    alice = RegularCustomer(user_id="alice", phone=CANARY_PHONE)  # a proxy saves too
    alice.save(using=shop)
    again = Customer.objects.using(shop).get(pk=alice.pk)
    again.user_id = "bob"
    with pytest.raises(pg.InvalidArgument):
        again.save(using=shop)  # never read: would stay under alice's key
    with pg.acting(**TESTING):
        _ = again.phone
    again.save(using=shop)  # read: sealed again under bob's key
    guard.erase("bob")
    with pg.acting(**TESTING), pytest.raises(pg.KeyDestroyed):
        _ = Customer.objects.using(shop).get(pk=alice.pk).phone


def test_an_opened_instance_pickles_without_its_plaintext(shop: str, guard: pg.Guard) -> None:
    import copy
    import pickle

    customer = Customer(user_id="customer-1", phone=CANARY_PHONE)
    customer.save(using=shop)
    loaded = Customer.objects.using(shop).get(pk=customer.pk)
    with pg.acting(**TESTING):
        _ = loaded.phone
    assert CANARY_PHONE.encode() not in pickle.dumps(loaded)
    with pytest.raises(pg.AccessDenied):
        _ = copy.deepcopy(loaded).phone  # the copy must open it again, audited
    clone = copy.copy(loaded)
    clone.pk = None  # a clone saved as a new row: sealed again, bound to its own key
    clone.save(using=shop)
    with pg.acting(**TESTING):
        assert Customer.objects.using(shop).get(pk=clone.pk).phone == CANARY_PHONE


def test_a_row_that_cannot_be_sealed_is_taken_back_and_update_fields_keeps_companions(
    shop: str, guard: pg.Guard
) -> None:
    with pytest.raises(pg.InvalidArgument):
        Customer(user_id="", phone=CANARY_PHONE).save(using=shop)  # no valid subject
    assert Customer.objects.using(shop).count() == 0  # no placeholder, mask or index left
    customer = Customer(user_id="customer-1", phone=CANARY_PHONE)
    customer.save(using=shop)
    customer.phone = "13912345678"  # type: ignore[assignment]
    customer.save(using=shop, update_fields=["phone"])
    found = Customer.objects.using(shop).filter(pg_dj.lookup(Customer, "phone", "13912345678"))
    assert [c.phone_masked for c in found] == ["139****5678"]
    assert not Customer.objects.using(shop).filter(pg_dj.lookup(Customer, "phone", CANARY_PHONE))


@pg_dj.acting("testing", actor=lambda request: request.headers.get("X-Staff"))
async def who_async(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"acting": list(pg.current_acting() or ())})


@pg_dj.consent("marketing_sms", subject=lambda request: request.headers.get("X-Customer"))
async def promo_async(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"sent": True})


urlpatterns += [path("who-async", who_async), path("promo-async", promo_async)]


def test_async_views_are_decorated_too(shop: str, guard: pg.Guard) -> None:
    guard.consent.register(pg.Purpose("marketing_sms", basis="consent", kinds={"phone"}))
    client = Client()
    assert client.get("/who-async", headers={"X-Staff": "cs-7"}).json() == {
        "acting": ["cs-7", "testing"]
    }
    assert client.get("/who-async").status_code == 403
    assert client.get("/promo-async", headers={"X-Customer": "customer-1"}).status_code == 403


def test_settings_never_stay_in_a_frame(tmp_path: Path) -> None:
    saved: dict[str, Any] = dict(pg_dj._INSTALLED)
    pg_dj._INSTALLED.clear()
    try:
        settings.PIIGUARD = {
            "STORE_URL": f"postgresql+psycopg://app:{CANARY_PHONE}@127.0.0.1:1/shop",
            "KEK": f"file:{tmp_path / 'kek.key'}",
        }
        with pytest.raises(pg.StoreError) as caught:
            pg_dj.guard()
        assert CANARY_PHONE not in piiguard_frames_text(caught.value)
    finally:
        del settings.PIIGUARD
        pg_dj._INSTALLED.clear()
        pg_dj._INSTALLED.update(saved)


# -- one transaction: pg_dj.bind ---------------------------------------------------------------


@pytest.fixture
def together(alias: str) -> Iterator[tuple[str, pg.Guard]]:
    """piiguard's store in the application's own database: Django's SQLite file, or its
    PostgreSQL database with the store in the schema on the alias's search path."""
    if alias == "pg":
        url, schema = POSTGRES_URL, SCHEMA
    else:
        url, schema = f"sqlite:///{settings.DATABASES['default']['NAME']}", None
    # the SQLite file (and so the store in it) lives as long as the test process
    kek = LocalKEK.load_or_generate(Path(settings.DATABASES["default"]["NAME"]).parent / "kek")
    saved: dict[str, Any] = dict(pg_dj._INSTALLED)
    with pg.Guard.open(url, kek=kek, schema=schema) as guard:
        allow_test_reveals(guard)
        if guard.consent.defined("marketing_sms") is None:
            guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
            guard.consent.publish_notice("v1", purposes=["marketing_sms"])
        guard.retention.policy(pg.RetentionPolicy("orders", keep=timedelta(days=365)))
        guard.encrypt("warm", context={"t": "warm"})  # the first key epoch, made outside
        pg_dj.install(guard)
        try:
            yield alias, guard
        finally:
            pg_dj._INSTALLED.clear()
            pg_dj._INSTALLED.update(saved)


def test_bind_commits_the_customer_and_the_grant_together(
    together: tuple[str, pg.Guard],
) -> None:
    alias, guard = together
    user = f"customer-{uuid.uuid4().hex[:8]}"
    before = sum(1 for _ in guard.audit.events(action="consent_grant"))
    with pg_dj.bind(using=alias):
        Customer(user_id=user, phone=CANARY_PHONE).save(using=alias)
        guard.consent.grant(user, "marketing_sms", notice="v1")
        assert guard.consent.check(user, "marketing_sms")  # its own write, seen inside
    assert Customer.objects.using(alias).filter(user_id=user).count() == 1
    assert guard.consent.check(user, "marketing_sms")
    assert sum(1 for _ in guard.audit.events(action="consent_grant")) == before + 1
    assert guard.audit.verify().ok


@pytest.mark.parametrize("outer", [False, True])
def test_a_rollback_in_or_around_bind_takes_the_grant_with_the_customer(
    together: tuple[str, pg.Guard], outer: bool
) -> None:
    """Raised inside the bound block, or by an enclosing atomic block after it ended: the
    customer, the grant and its audit event are all gone, and nothing cached says otherwise."""
    alias, guard = together
    user = f"customer-{uuid.uuid4().hex[:8]}"
    before = sum(1 for _ in guard.audit.events(action="consent_grant"))

    def fail() -> None:
        with transaction.atomic(using=alias):
            with pg_dj.bind(using=alias):
                Customer(user_id=user, phone=CANARY_PHONE).save(using=alias)
                guard.consent.grant(user, "marketing_sms", notice="v1")
                if not outer:
                    raise RuntimeError
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()
    assert Customer.objects.using(alias).filter(user_id=user).count() == 0
    assert not guard.consent.check(user, "marketing_sms")
    assert guard.consent.history(user) == []
    assert sum(1 for _ in guard.audit.events(action="consent_grant")) == before
    assert guard.audit.verify().ok
    assert CANARY_PHONE not in _raw(alias)


def test_bind_refuses_a_store_in_another_database_and_changes_nothing(
    shop: str, guard: pg.Guard
) -> None:
    """The store in another file or database: bound writes could not commit with the
    application's, so bind refuses before any write. (A store in another schema of the
    same PostgreSQL database is the same database: its tables are named with their schema.)"""
    if shop == "pg" and guard.store.engine.dialect.name == "postgresql":
        with pg_dj.bind(using=shop):
            guard.consent.register(pg.Purpose("marketing_sms", kinds={"phone"}))
            Customer(user_id="customer-x", phone=CANARY_PHONE).save(using=shop)
        assert guard.consent.defined("marketing_sms") is not None
        return
    before = guard.keys.counts()
    with pytest.raises(pg.InvalidArgument, match="same"), pg_dj.bind(using=shop):
        Customer(user_id="customer-x", phone=CANARY_PHONE).save(using=shop)
    assert Customer.objects.using(shop).count() == 0
    assert guard.keys.counts() == before  # refused before it made any key


def test_bind_leaves_djangos_connection_as_it_was(together: tuple[str, pg.Guard]) -> None:
    """SQLAlchemy's own REGEXP function is not put in place of Django's, and the
    connection stays open and usable (its commit, rollback and close are Django's)."""
    alias, guard = together
    user = f"customer-{uuid.uuid4().hex[:8]}"
    with pg_dj.bind(using=alias):
        Customer(user_id=user, phone=CANARY_PHONE).save(using=alias)
        guard.retention.track("orders", f"order-{user}", subject=user)
    found = Customer.objects.using(alias).filter(user_id__regex=r"^customer-[0-9a-f]{8}$")
    assert user in {customer.user_id for customer in found}
    assert connections[alias].is_usable()
    with pg.acting(**TESTING):
        assert Customer.objects.using(alias).get(user_id=user).phone == CANARY_PHONE


def test_a_reveal_inside_a_bound_block_that_wrote(together: tuple[str, pg.Guard]) -> None:
    """PostgreSQL records the reveal beside the application's transaction; SQLite's one
    writer cannot while Django's transaction holds the file, and says so at once (no
    wait on a lock its own thread holds)."""
    alias, _ = together
    user = f"customer-{uuid.uuid4().hex[:8]}"
    with pg_dj.bind(using=alias):
        customer = Customer(user_id=user, phone=CANARY_PHONE)
        customer.save(using=alias)
        fresh = Customer.objects.using(alias).get(pk=customer.pk)
        with pg.acting(**TESTING):
            if alias == "pg":
                assert fresh.phone == CANARY_PHONE
            else:
                with pytest.raises(pg.EventNotRecorded, match="holds the SQLite file") as held:
                    _ = fresh.phone
                assert CANARY_PHONE not in piiguard_frames_text(held.value)
    with pg.acting(**TESTING):
        assert Customer.objects.using(alias).get(pk=customer.pk).phone == CANARY_PHONE


class CustomerForm(forms.ModelForm):  # type: ignore[misc]
    class Meta:
        model = Customer
        fields = ("user_id", "phone", "id_number")


def test_a_model_form_checks_the_kind_and_its_errors_never_hold_the_value(
    shop: str, guard: pg.Guard
) -> None:
    wrong_id = CANARY_ID[:-1] + "3"  # a bad check character
    bad = CustomerForm({"user_id": "customer-1", "phone": "1381234567", "id_number": wrong_id})
    assert not bad.is_valid()
    assert set(bad.errors) == {"phone", "id_number"}
    assert bad.errors["phone"] == ["Enter a valid phone number."]
    shown = repr(bad.errors.as_data()) + bad.errors.as_json()
    assert "1381234567" not in shown
    assert wrong_id not in shown
    assert isinstance(CustomerForm().fields["phone"].widget, forms.TextInput)
    good = CustomerForm({"user_id": "customer-1", "phone": "138 1234 5678", "id_number": CANARY_ID})
    assert good.is_valid(), good.errors
    customer = good.save(commit=False)
    customer.save(using=shop)
    assert Customer.objects.using(shop).get(pk=customer.pk).phone_masked == "138 **** 5678"
    with pg.acting(**TESTING):
        assert Customer.objects.using(shop).get(pk=customer.pk).id_number == CANARY_ID


def test_a_primary_key_changed_in_place_seals_the_values_again_or_is_refused(
    shop: str, guard: pg.Guard
) -> None:
    """Django saves a row whose key changed as a new row: values bound to the old key
    would never open there, so they are sealed again if read, and the save is refused
    otherwise; a value read after the change still opens (bound to the key it was loaded
    with)."""
    line = "北京市朝阳区建国路88号"
    Address(code="a-1", user_id="customer-1", line=line).save(using=shop)
    moved = Address.objects.using(shop).get(pk="a-1")
    moved.code = "a-2"
    with pytest.raises(pg.InvalidArgument, match="changed primary key"):
        moved.save(using=shop)
    assert not Address.objects.using(shop).filter(pk="a-2").exists()
    with pg.acting(**TESTING):
        assert moved.line == line
    moved.save(using=shop)
    with pg.acting(**TESTING):
        assert Address.objects.using(shop).get(pk="a-2").line == line
        assert Address.objects.using(shop).get(pk="a-1").line == line
    for copy in (pickle.loads, copy_module.deepcopy):  # a copy knows its row too
        loaded = Address.objects.using(shop).get(pk="a-1")
        copied = copy(pickle.dumps(loaded)) if copy is pickle.loads else copy(loaded)
        copied.code = "a-2"
        with pytest.raises(pg.InvalidArgument, match="changed primary key"):
            copied.save(using=shop)
    with pg.acting(**TESTING):
        assert Address.objects.using(shop).get(pk="a-2").line == line


def _grant_in_a_savepoint_rolled_back(alias: str, guard: pg.Guard, user: str) -> None:
    def fail() -> None:
        with transaction.atomic(using=alias):
            guard.consent.grant(user, "marketing_sms", notice="v1")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()


def test_a_first_write_in_a_savepoint_rolled_back_still_chains_the_commit(
    together: tuple[str, pg.Guard],
) -> None:
    """piiguard's first joined write inside an inner atomic block that rolls back: the
    grant committed after it is chained into the log at the commit, and read as committed."""
    alias, guard = together
    user, other = (f"customer-{uuid.uuid4().hex[:8]}" for _ in range(2))
    before = sum(1 for _ in guard.audit.events(action="consent_grant"))
    with pg_dj.bind(using=alias):
        _grant_in_a_savepoint_rolled_back(alias, guard, other)
        guard.consent.grant(user, "marketing_sms", notice="v1")
    assert sum(1 for _ in guard.audit.events(action="consent_grant")) == before + 1
    assert guard.consent.check(user, "marketing_sms")
    assert not guard.consent.check(other, "marketing_sms")
    with pg_dj.bind(using=alias):
        _grant_in_a_savepoint_rolled_back(alias, guard, other)
        guard.consent.withdraw(user, "marketing_sms")
    assert not guard.consent.check(user, "marketing_sms")  # no cached grant outlives it


def test_times_read_inside_bind_are_instants_whatever_djangos_time_zone(
    together: tuple[str, pg.Guard],
) -> None:
    """With USE_TZ off, Django reads a PostgreSQL timestamptz as a naive time in TIME_ZONE:
    piiguard, reading through Django's connection, still reads the instant (its consent
    evidence, bound to the grant's time, opens)."""
    alias, guard = together
    user = f"customer-{uuid.uuid4().hex[:8]}"
    with override_settings(USE_TZ=False, TIME_ZONE="Asia/Shanghai"):
        with pg_dj.bind(using=alias):
            guard.consent.grant(user, "marketing_sms", notice="v1", evidence={"channel": "web"})
            inside = [event.at for event in guard.consent.history(user)]
            if alias == "pg":  # a reveal beside the transaction (SQLite's one writer: after)
                with pg.acting(**TESTING):
                    assert guard.consent.proof(user, "marketing_sms").evidence == {"channel": "web"}
        outside = [event.at for event in guard.consent.history(user)]
        with pg.acting(**TESTING):
            assert guard.consent.proof(user, "marketing_sms").evidence == {"channel": "web"}
    assert inside == outside


def test_full_clean_leaves_values_nobody_read_alone(shop: str, guard: pg.Guard) -> None:
    """Django reads every field to validate it: a stored value nobody read is not revealed
    (nor audited) by full_clean, nor its query's batch; a value assigned is checked."""
    for n in range(3):
        Customer(user_id=f"customer-{n}", phone=f"1381234567{n}", id_number=CANARY_ID).save(
            using=shop
        )
    rows = list(Customer.objects.using(shop).order_by("pk"))
    rows[0].full_clean()  # no pg.acting: nothing is revealed
    assert _decrypts(guard) == []
    rows[1].phone = "1381234"
    with pytest.raises(ValidationError) as refused:
        rows[1].full_clean()
    assert set(refused.value.message_dict) == {"phone"}
    assert "1381234" not in str(refused.value)
    assert _decrypts(guard) == []
