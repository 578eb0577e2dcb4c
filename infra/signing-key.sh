#!/usr/bin/env bash
# Creates the token-signing key as an SSM SecureString parameter (the SAM
# stack reads it; CloudFormation cannot create SecureStrings). Run once per
# account and region: replacing the key breaks every link already mailed.
#
# Usage: infra/signing-key.sh [/broadsheet/signing-key]
set -euo pipefail

name=${1:-/broadsheet/signing-key}
if aws ssm get-parameter --name "$name" >/dev/null 2>&1; then
  echo "$name exists; leaving it alone (replacing it would break mailed links)."
  exit 0
fi
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
aws ssm put-parameter --name "$name" --type SecureString --value "$key" \
  --description "Broadsheet token-signing key (hex, 32 bytes)" >/dev/null
echo "Created $name."
