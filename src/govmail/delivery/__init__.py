"""Mail between govmail and the Internet: DNS, the outbound queue and its workers, DKIM
signing, and the SPF/DKIM/DMARC checks on mail coming in."""
