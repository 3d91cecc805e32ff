# Entry points; each target is one script (see README).
.PHONY: stage test serve

# Cloud Functions sources: build/functions/<name>/ (main.py, pinned requirements.txt,
# the shared packages it imports), zipped and uploaded by infra/terraform.
stage:
	./scripts/stage-functions

test:
	./scripts/test

serve:
	./scripts/serve
