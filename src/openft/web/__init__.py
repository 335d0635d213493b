"""The web pages `openft serve` shows beside the API: the dashboard at `/` and the API reference at
`/docs`. Static files shipped in the package, read offline; the dashboard's data comes only from the
public /v1 API, with the user's key, like any other client."""
