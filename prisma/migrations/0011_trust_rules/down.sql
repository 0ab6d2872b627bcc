-- Reverts 0011_trust_rules.
DROP TABLE "trust_rules";
