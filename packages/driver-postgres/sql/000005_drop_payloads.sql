-- Task inputs too large for a message stay in their task row (the claim check reads them from
-- there): the separate payload table was never used.
DROP TABLE IF EXISTS payloads;
