#!/usr/bin/env bash
# Sets up SES for Broadsheet's sending domain, outside the SAM stack:
# the domain identity with Easy DKIM, a custom MAIL FROM subdomain, and
# prints the DNS records to publish (DKIM, MAIL FROM MX and SPF, DMARC).
#
# Usage: infra/ses-setup.sh news.example.com [mail-from-subdomain]
# Needs the AWS CLI v2 with credentials for the account and region the
# stack is deployed to. Safe to run again: it only creates what is missing.
set -euo pipefail

domain=${1:?usage: ses-setup.sh DOMAIN [MAIL_FROM_SUBDOMAIN]}
mailfrom=${2:-bounce.$domain}
region=${AWS_REGION:-$(aws configure get region)}

if ! aws sesv2 get-email-identity --email-identity "$domain" >/dev/null 2>&1; then
  echo "Creating the SES identity $domain with Easy DKIM (RSA 2048)…"
  aws sesv2 create-email-identity --email-identity "$domain" \
    --dkim-signing-attributes NextSigningKeyLength=RSA_2048_BIT >/dev/null
fi

echo "Setting the custom MAIL FROM domain $mailfrom…"
aws sesv2 put-email-identity-mail-from-attributes --email-identity "$domain" \
  --mail-from-domain "$mailfrom" --behavior-on-mx-failure USE_DEFAULT_VALUE

echo
echo "Publish these DNS records, then wait for SES to verify them"
echo "(aws sesv2 get-email-identity --email-identity $domain):"
echo
for token in $(aws sesv2 get-email-identity --email-identity "$domain" \
    --query 'DkimAttributes.Tokens' --output text); do
  printf '%s._domainkey.%s\tCNAME\t%s.dkim.amazonses.com\n' "$token" "$domain" "$token"
done
printf '%s\tMX\t10 feedback-smtp.%s.amazonses.com\n' "$mailfrom" "$region"
printf '%s\tTXT\t"v=spf1 include:amazonses.com ~all"\n' "$mailfrom"
printf '_dmarc.%s\tTXT\t"v=DMARC1; p=none; rua=mailto:dmarc-reports@%s"\n' "$domain" "$domain"
echo
echo "Start DMARC at p=none, read the reports, then move to p=quarantine."
