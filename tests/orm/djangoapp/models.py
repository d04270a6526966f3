"""The shop's Django models the integration is tested on."""

from __future__ import annotations

from typing import Any

from django.db import models

from piiguard.integrations import django as pg_dj


class Customer(models.Model):  # type: ignore[misc]
    """A server-side key (auto), a subject, both companions."""

    user_id = models.CharField(max_length=40)
    phone = pg_dj.EncryptedField("phone", subject="user_id", searchable=True, masked=True)
    id_number = pg_dj.EncryptedField("cn_resident_id", subject="user_id")

    class Meta:
        app_label = "djangoapp"


class Address(models.Model):  # type: ignore[misc]
    """A client-side key."""

    code = models.CharField(max_length=40, primary_key=True)
    user_id = models.CharField(max_length=40)
    line = pg_dj.EncryptedField("address", subject="user_id", masked=True)

    class Meta:
        app_label = "djangoapp"


class RegularCustomer(Customer):
    """A proxy: saved through the same table, with the same sealing."""

    class Meta:
        proxy = True
        app_label = "djangoapp"


class VipCustomer(Customer):
    """Multi-table inheritance: the parent's encrypted fields and one of its own, loaded
    through a from_db of its own."""

    card = pg_dj.EncryptedField("bank_card", subject="user_id")
    loaded_by_own_from_db = False

    @classmethod
    def from_db(cls, db: str, field_names: list[str], values: Any) -> VipCustomer:
        instance = super().from_db(db, field_names, values)
        instance.loaded_by_own_from_db = True
        return instance  # type: ignore[no-any-return]

    class Meta:
        app_label = "djangoapp"
