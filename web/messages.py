"""Sentences the workflow layer and its libraries produce, marked here for the catalogue.

The workflow layer must not import Flask-Babel, so its messages stay English; listing the fixed
ones here lets ``pybabel extract`` collect them and ``web.i18n.translate`` show them in Chinese.
Messages with variable parts are worded per guard in ``web.i18n.reason_text`` instead.
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - the conventional name extractors look for
    """Mark a message for extraction without translating it here."""
    return message


WORKFLOW_MESSAGES = (
    N_("Some fields are not valid."),
    N_("Missing data for required field."),
    N_("Field may not be null."),
    N_("Invalid value."),
    N_("Not a valid integer."),
    N_("Not a valid number."),
    N_("Not a valid date."),
    N_("Not a valid datetime."),
    N_("Not a valid string."),
    N_("Not a valid boolean."),
    N_("Not a valid id."),
    N_("Unknown field."),
    N_("Must be a non-negative multiple of 0.5 person-days."),
    N_("A comment is required for this step."),
    N_("Required."),
    N_("This field is required."),
    N_("A contract is required."),
    N_("That system is not under this contract."),
    N_("Not under the chosen contract."),
    N_("Choose a file first."),
    N_("A document kind such as 'test_report' is required."),
    N_("Lower-case letters, digits and '_'."),
    N_("This request is finished; documents can no longer be added."),
    N_("You may not add documents to this request."),
    N_("There is no such request, or it is not yours to see."),
    N_("There is no such document, or it is not yours to see."),
    N_("Someone else changed this request at the same moment. Reload and try again."),
    N_(
        "Wrong username or password, or the account is locked "
        "(after repeated failures the security administrator must unlock it)."
    ),
    N_("Only the security administrator locks and unlocks accounts."),
    N_("Nobody locks or unlocks their own account."),
    N_("does not chain from the entry before it (reordered or replaced)"),
    N_("content does not match its hash (edited)"),
    N_("Some linked requests are not valid."),
    N_("Each request may be named once."),
    N_("An adjustment is a non-zero number of person-days in steps of 0.5."),
    N_("Say why."),
    N_("Only the hospital's IT signer of this contract may correct its quota."),
    N_("The day must lie within the contract's term."),
    N_("IT has already confirmed the actual effort"),
    N_("The vendor has already confirmed the actual effort"),
    N_("Type your password again to do this step (it counts for five minutes)."),
    N_("The password is wrong."),
    N_("Only the system administrator keeps the system registry."),
    N_("A system with this code exists."),
    N_("This release is already registered."),
    N_("Not a valid version."),
    N_("Lower-case letters, digits, '_', '.' and '-'."),
    N_("A name of 1 to 200 characters is required."),
    N_("There is no signature to deploy against."),
    N_("The stored signature does not match its digest; it cannot be trusted."),
    N_("The documents differ from the ones signed; the signature is void."),
    # The working-day calendar (workflow.calendar_overrides)
    N_("Choose a date."),
    N_("The calendar covers the years 2000 to 2099."),
    N_("Only IT staff may change the working-day calendar."),
    N_("Say whether the date is a working day or a day off."),
    N_("The reason is longer than 300 characters."),
    N_("There is no override on this date."),
    N_("Someone else changed this date at the same time; reload and try again."),
)
