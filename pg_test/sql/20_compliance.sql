-- warden.compliance_report() and warden.compliance_report_markdown(): the shape, every control of the
-- two frameworks with its status, gaps that follow the live state (and close when it is fixed), the
-- period's events, and who may run them.
begin;
-- as on a new database: the chain never verified (earlier files of the suite verify it)
delete from warden.posture_checks;
-- the report's statuses, control by control
create function pg_temp.statuses() returns table (framework text, control text, status text, gap text) language sql as $$
    select c ->> 'framework', c ->> 'control', c ->> 'status', c ->> 'gap'
      from jsonb_array_elements(warden.compliance_report() -> 'controls') c
$$;
-- the shape: top-level keys, summary keys, every control's keys
select array(select jsonb_object_keys(warden.compliance_report()) order by 1) as report_keys;
select array(select jsonb_object_keys(warden.compliance_report() -> 'summary') order by 1) as summary_keys;
select c ->> 'control' as control, array(select jsonb_object_keys(c) order by 1) as keys,
       array(select jsonb_object_keys(c -> 'evidence') order by 1) as evidence
  from jsonb_array_elements(warden.compliance_report() -> 'controls') c;
-- a new database: isolation is complete (no tables), nothing is audited, classified or registered,
-- the chain never verified, the server offers no TLS
select * from pg_temp.statuses();
select (warden.compliance_report() -> 'summary') - 'events_in_period' - 'hold_violations_in_period' - 'denied_authentications_in_period' as summary;
-- manual controls say why the database cannot know
select c ->> 'control' as control, c ->> 'note' as note
  from jsonb_array_elements(warden.compliance_report() -> 'controls') c where c ->> 'status' = 'manual';

-- a table with a tenant column and no isolation: CC6.1 and A.9 have a gap, with the lint finding
-- and the unprotected table in their evidence
create table cr_docs (id int primary key, tenant_id uuid not null, body text, email text);
select control, status, gap from pg_temp.statuses() where control in ('CC6.1', 'A.9');
select c #> '{evidence,unprotected}' as unprotected, jsonb_path_query_array(c, '$.evidence.findings[*].rule') as rules
  from jsonb_array_elements(warden.compliance_report() -> 'controls') c where c ->> 'control' = 'CC6.1';
-- fixed: protected, audited, classified, its personal data registered; the chain verified and
-- anchored (the worker's notes, written here directly); TLS required for every context
select warden.protect_table('cr_docs') is not null as protected, warden.enable_audit('cr_docs') is not null as audited;
select warden.classify('cr_docs', 'CONFIDENTIAL');
select warden.register_personal_data('cr_docs', 'id', '{email}', 'redact');
insert into warden.posture_checks values ('verify_audit', now(), 'ok', 'postgres'), ('audit_digest', now(), 'ok', 'postgres');
set local warden.require_tls = on;
select * from pg_temp.statuses();
select c #>> '{evidence,coverage_percent}' as coverage, c #>> '{evidence,tables}' as tables
  from jsonb_array_elements(warden.compliance_report() -> 'controls') c where c ->> 'control' = 'CC6.1';
select c #> '{evidence,by_level}' as by_level, c #> '{evidence,personal_data_columns}' as personal_data
  from jsonb_array_elements(warden.compliance_report() -> 'controls') c where c ->> 'control' = 'C1.1';
select c #>> '{evidence,last_verification,result}' as verification, c #>> '{evidence,last_digest,within_check_age}' as digest_recent
  from jsonb_array_elements(warden.compliance_report() -> 'controls') c where c ->> 'control' = 'CC7.2';
-- a verification that found the chain broken: CC7.2, CC7.3, A.12, A.16 and A.18 have a gap again
update warden.posture_checks set last_result = 'broken' where check_name = 'verify_audit';
select control, status, gap from pg_temp.statuses() where status = 'gap';
update warden.posture_checks set last_result = 'ok' where check_name = 'verify_audit';
-- a login role with BYPASSRLS: CC6.3 and A.9
create role cr_bypass login bypassrls;
select control, status, gap from pg_temp.statuses() where status = 'gap';
select c #> '{evidence,privileged_logins}' as logins
  from jsonb_array_elements(warden.compliance_report() -> 'controls') c where c ->> 'control' = 'CC6.3';
drop role cr_bypass;
-- statements logged without redaction: CC6.7 and A.12
set local log_statement = 'all';
set local warden.log_redaction = off;
select control, status, gap from pg_temp.statuses() where status = 'gap';
reset log_statement;
reset warden.log_redaction;

-- the period: a report of an earlier period, and one that is empty, reversed or NULL (the
-- period's events are counted in tests/ops/metrics.sh, where they are committed)
select warden.compliance_report(now() - interval '60 days', now() - interval '30 days') #> '{summary,events_in_period}' as earlier,
       jsonb_typeof(warden.compliance_report(now() - interval '1 day', now() + interval '1 minute') -> 'period') as period;
select regexp_replace(regress_try('select warden.compliance_report(now(), now() - interval ''1 day'')'), '\(from [^)]* to [^)]*\)', '(from ... to ...)') as reversed;
select regexp_replace(regress_try('select warden.compliance_report(NULL, now())'), '\(from [^)]* to [^)]*\)', '(from ... to ...)') as null_from;

-- the Markdown document: title, summary, the controls table, a section per control
select split_part(warden.compliance_report_markdown(), E'\n', 1) as title;
select line from regexp_split_to_table(warden.compliance_report_markdown(), E'\n') line
 where line ~ '^\| (SOC 2|ISO 27001) \|' or line ~ '^## ' or line ~ '^\| controls \|';
-- a finding's row in its control's section, pipes in values escaped
create table cr_open (id int primary key, tenant_id uuid not null);
select line from regexp_split_to_table(warden.compliance_report_markdown(), E'\n') line
 where line like '%unprotected\_tenant\_table%';
drop table cr_open;

-- who may run them: warden_auditor (and nothing else needed), not the application
create role cr_auditor in role warden_auditor;
set local role cr_auditor;
select (warden.compliance_report() #>> '{summary,controls}')::int as controls, length(warden.compliance_report_markdown()) > 1000 as document;
reset role;
set local role regress_app;
select regress_try('select warden.compliance_report()');
select regress_try('select warden.compliance_report_markdown()');
reset role;
rollback;
