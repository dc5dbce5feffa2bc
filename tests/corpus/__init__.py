"""The bad-input corpus: named cases of hostile FHIR input, each with the outcome it must produce."""
