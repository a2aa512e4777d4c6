"""Image generation (docs/api.md, images): `POST /v1/images/generations` billed per image.

`generate` is the request path; `request` and `rules` validate a body against the
model's sizes, qualities and `n`; `results` reads a provider's answer; `storage` keeps
the images (Supabase Storage, or local files under `gatewayz dev`).
"""
