"""Guards and effects of the upgrade sign-off (DOMAIN §2: Z4, Z3, Z7).

The signature binds the signer, the time, the system, the from and to versions, the package
SHA-256 when given and the SHA-256 of every document attached at that moment, with one digest
over all of it. Adding or removing a document afterwards voids it (``document_changes`` in the
definition, applied by ``workflow.attachments``). Deploying must match the signature; verifying
records the new version on the system; rolling back restores the one before.
"""

from __future__ import annotations

from datetime import datetime

from marshmallow import fields

from workflow.canonical import content_hash
from workflow.guards import lookup_policy
from workflow.registry import FireContext, Refusal, effect, guard
from workflow.systems import newest_release


def _system(ctx: FireContext):
    return ctx.request.system


@guard(
    "latest_release",
    params={"policy": fields.String(load_default="upgrade.require_latest_release")},
)
def latest_release(ctx: FireContext, policy: str) -> str | None:
    """Z3: the target is the system's newest registered release, unless IT recorded an override
    for exactly this version; passes when the contract's policy does not require it."""
    if not lookup_policy(ctx.policy, policy):
        return None
    data = ctx.request.data or {}
    target, system = data.get("to_version"), _system(ctx)
    if system is None:
        return Refusal("An upgrade must name the system it upgrades.", target=target)
    override = data.get("release_override") or {}
    if override.get("version") == target:
        return None
    newest = newest_release(system)
    if newest is not None and newest.version == target:
        return None
    newest_version = newest.version if newest else None
    return Refusal(
        f"Version {target} is not the newest registered release of {system.code}"
        + (f" ({newest_version})" if newest_version else " (none is registered)")
        + "; IT may record an override with a reason.",
        target=target,
        newest=newest_version,
        system=system.code,
    )


@effect("record_override", params={"field": fields.String(load_default="release_override")})
def record_override(ctx: FireContext, field: str) -> None:
    """Record that IT accepts a target that is not the newest release, with who, when and why."""
    data = dict(ctx.request.data or {})
    data[field] = {
        "user": ctx.actor.username,
        "at": ctx.now.isoformat() + "Z",
        "version": data.get("to_version"),
        "reason": ctx.comment,
    }
    ctx.request.data = data


def signed_documents(request) -> list[dict]:
    """The request's current documents as a signature binds them, in a stable order."""
    return [
        {"id": a.id, "kind": a.kind, "filename": a.filename, "sha256": a.sha256}
        for a in sorted(request.attachments, key=lambda a: a.id)
        if a.removed_at is None
    ]


def signature_body(signature: dict) -> dict:
    """The signed content: everything in the signature except its digest."""
    return {key: value for key, value in signature.items() if key != "digest"}


@effect("sign_upgrade", params={"field": fields.String(load_default="signature")})
def sign_upgrade(ctx: FireContext, field: str) -> None:
    """Store the signature over system, versions, package hash and every document's SHA-256."""
    data = dict(ctx.request.data or {})
    system = _system(ctx)
    body = {
        "user": ctx.actor.username,
        "at": ctx.now.isoformat() + "Z",
        "system": {"id": system.id, "code": system.code} if system else None,
        "from_version": data.get("from_version") or (system.current_version if system else None),
        "to_version": data.get("to_version"),
        "package_sha256": data.get("package_sha256"),
        "documents": signed_documents(ctx.request),
    }
    data[field] = {**body, "digest": content_hash(body)}
    ctx.request.data = data


@guard(
    "matches_signature",
    params={"field": fields.String(load_default="signature")},
    reads_input=lambda params: {"deployed_version", "deployed_package_sha256"},
)
def matches_signature(ctx: FireContext, field: str) -> str | None:
    """Deploying: the signature is intact and the deployed version (and package SHA-256, when
    given) is exactly the signed one."""
    signature = (ctx.request.data or {}).get(field)
    if not signature:
        return Refusal("There is no signature to deploy against.")
    if content_hash(signature_body(signature)) != signature.get("digest"):
        return Refusal("The stored signature does not match its digest; it cannot be trusted.")
    if signature_body(signature)["documents"] != signed_documents(ctx.request):
        return Refusal("The documents differ from the ones signed; the signature is void.")
    deployed = ctx.fields.get("deployed_version")
    if deployed != signature.get("to_version"):
        return Refusal(
            f"Deployed version {deployed} is not the signed version {signature.get('to_version')}.",
            deployed=deployed,
            signed=signature.get("to_version"),
        )
    package = ctx.fields.get("deployed_package_sha256")
    signed_package = signature.get("package_sha256")
    if package and signed_package and package.lower() != signed_package.lower():
        return Refusal(
            f"The deployed package's SHA-256 {package} is not the signed {signed_package}.",
            deployed_package=package,
            signed_package=signed_package,
        )
    return None


@effect("install_version")
def install_version(ctx: FireContext) -> None:
    """Verified: the system now runs the deployed version, upgraded today (Z3's clock restarts)."""
    system, data = _system(ctx), dict(ctx.request.data or {})
    if system is None:
        return
    data["previous_version"] = system.current_version
    data["previous_upgrade_at"] = (
        system.last_upgrade_at.isoformat() + "Z" if system.last_upgrade_at else None
    )
    system.current_version = data.get("deployed_version") or data.get("to_version")
    system.last_upgrade_at = ctx.now
    ctx.request.data = data


@effect("restore_version")
def restore_version(ctx: FireContext) -> None:
    """Rolled back after verification: the system runs its previous version again."""
    system, data = _system(ctx), dict(ctx.request.data or {})
    if system is None or "previous_version" not in data:
        return  # never installed on the system: nothing to restore
    system.current_version = data["previous_version"]
    previous = data.get("previous_upgrade_at")
    system.last_upgrade_at = (
        datetime.fromisoformat(previous.removesuffix("Z")) if previous else None
    )
    data["restored_version"] = data["previous_version"]
    ctx.request.data = data
