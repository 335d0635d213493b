"""The wire format: pydantic models field-for-field with OpenAI's. No logic, no database."""
