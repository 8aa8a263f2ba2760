-- Encryption at rest: tenant keys (admin level), AES-256-GCM with aad, rotation and re-encryption,
-- a ciphertext refused under another tenant, tampering and a wrong or swapped aad refused, no key
-- material anywhere in SQL, tenant secrets, and crypto-shredding of a data subject's key.
begin;
create function pg_temp.try(sql text) returns text language sql as $$
    select regexp_replace(regress_try(sql),
        '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g')
$$;
create function pg_temp.ctx(t text, a text, lvl text) returns void language sql as $$
    select warden.set_context(('00000000-0000-0000-0000-00000000000' || t)::uuid,
                              ('00000000-0000-0000-0000-00000000000' || a)::uuid, lvl)
$$;
set local role regress_owner;
create table c_cards (id int primary key, tenant_id uuid not null, number bytea);
select warden.protect_table('c_cards');
grant select, insert, update, delete on c_cards to regress_app;
reset role;

-- Keys: admin level of the tenant; names are the tenant's own
select pg_temp.ctx('a', '1', 'write');
set local role regress_app;
select pg_temp.try($$select warden.create_key('cards')$$);
reset role;
select pg_temp.ctx('a', '1', 'admin');
set local role regress_app;
select warden.create_key('cards') is not null as created;
select pg_temp.try($$select warden.create_key('cards')$$);
select pg_temp.try($$select warden.create_key('warden:secrets')$$);
select pg_temp.try($$select warden.create_key('subject:x')$$);
select pg_temp.try($$select warden.encrypt('x'::text, 'nope')$$);
-- encrypt bound to the row: aad = the row's id
insert into c_cards values (1, '00000000-0000-0000-0000-00000000000a', warden.encrypt('4111 1111 1111 1111', 'cards', '1')),
                           (2, '00000000-0000-0000-0000-00000000000a', warden.encrypt('5500 0000 0000 0004', 'cards', '2'));
select id, length(number) as bytes, substr(number, 1, 4) as header, warden.decrypt_text(number, id::text::bytea) as number
  from c_cards order by id;
select warden.decrypt(warden.encrypt('\x00ff'::bytea, 'cards')) as bytes_round_trip;
select warden.encrypt(null::text, 'cards') is null as null_stays_null;
select count(distinct warden.encrypt('same', 'cards')) as two_encryptions_differ from generate_series(1, 2);
-- a wrong aad, no aad, a swapped ciphertext, one flipped byte: refused, never garbage
select pg_temp.try($$select warden.decrypt_text(number, '2') from c_cards where id = 1$$);
select pg_temp.try($$select warden.decrypt_text(number) from c_cards where id = 1$$);
update c_cards set number = (select number from c_cards where id = 2) where id = 1;
select pg_temp.try($$select warden.decrypt_text(number, id::text::bytea) from c_cards where id = 1$$);
select pg_temp.try($$select warden.decrypt_text(set_byte(number, 50, get_byte(number, 50) # 1), '2') from c_cards where id = 2$$);
select pg_temp.try($$select warden.decrypt_text(set_byte(number, 10, get_byte(number, 10) # 1), '2') from c_cards where id = 2$$);
select pg_temp.try($$select warden.decrypt('\x00'::bytea)$$);
select pg_temp.try($$select warden.decrypt(substr(number, 1, 40)) from c_cards where id = 2$$);
select pg_temp.try($$select warden.decrypt_text(warden.encrypt('\xff'::bytea, 'cards'))$$);

-- Rotation: new ciphertexts use the new version, old ones still decrypt, reencrypt moves them
select warden.rotate_key('cards') as new_version;
select substr(warden.encrypt('x'::text, 'cards'), 21, 4) as version_in_new_ciphertexts;
update c_cards set number = warden.reencrypt(number, id::text::bytea) where id = 2;
select id, substr(number, 21, 4) as version, warden.decrypt_text(number, id::text::bytea) from c_cards where id = 2;
select name, version, current, destroyed from warden.keys order by name, version;
select pg_temp.try($$select warden.rotate_key('nope')$$);
-- the key material is nowhere the application can read
select pg_temp.try($$select * from warden.keyring$$);

-- Another tenant: the ciphertext does not decrypt (42501) and its keys are not even listed
reset role;
select number as a_number from c_cards where id = 2 \gset
select pg_temp.ctx('b', '2', 'admin');
set local role regress_app;
select pg_temp.try(format('select warden.decrypt(%L::bytea, %L)', :'a_number', '2'));
select count(*) as keys_b_sees from warden.keys;
select pg_temp.try($$select warden.encrypt('x'::text, 'cards')$$);
-- without a context: refused
reset role;
select warden.clear_context();
set local role regress_app;
select pg_temp.try(format('select warden.decrypt(%L::bytea, %L)', :'a_number', '2'));
select pg_temp.try($$select warden.encrypt('x'::text, 'cards')$$);

-- Tenant secrets: admin writes, read level reads, every read on record; tenant-scoped
reset role;
select pg_temp.ctx('a', '1', 'admin');
set local role regress_app;
select warden.put_secret('stripe', 'sk_live_123');
select warden.put_secret('stripe', 'sk_live_456');
select name from warden.secret_names;
reset role;
select pg_temp.ctx('a', '3', 'read');
set local role regress_app;
select warden.get_secret('stripe');
select pg_temp.try($$select warden.put_secret('stripe', 'mine now')$$);
select pg_temp.try($$select warden.get_secret('nope')$$);
select pg_temp.try($$select * from warden.secrets$$);
reset role;
select pg_temp.ctx('b', '2', 'admin');
set local role regress_app;
select pg_temp.try($$select warden.get_secret('stripe')$$);
select count(*) as names_b_sees from warden.secret_names;
reset role;
select count(*) as secrets_stored, count(*) filter (where position(convert_to('sk_live', 'UTF8') in ciphertext) > 0) as in_clear
  from warden.secrets;
select e.action, e.status, e.resource_id from warden.audit_events e
 where e.action = 'get_secret' and e.id > (select coalesce(max(id), 0) - 10 from warden.audit_events)
union all
select p.action, p.status, p.resource_id from warden.audit_pending p where p.action = 'get_secret';

-- Crypto-shredding: a subject's key dies with erase_subject, and with it every ciphertext
select pg_temp.ctx('a', '1', 'admin');
set local role regress_app;
select warden.subject_key('00000000-0000-0000-0000-0000000000b0') as bob_key;
select warden.encrypt('bob''s diagnosis', warden.subject_key('00000000-0000-0000-0000-0000000000b0')) as bob_secret \gset
select warden.decrypt_text(:'bob_secret');
select report -> 'subject_key' as subject_key
  from warden.erase_subject('00000000-0000-0000-0000-0000000000b0', 'Art. 17 request') report;
select pg_temp.try(format('select warden.decrypt_text(%L::bytea)', :'bob_secret'));
select pg_temp.try(format('select warden.encrypt(%L, %L)', 'more', warden.subject_key('00000000-0000-0000-0000-0000000000b0')));
select name, destroyed from warden.keys where name like 'subject:%';
reset role;
select count(*) filter (where wrapped is null) as destroyed_versions, count(*) filter (where destroyed_at is not null) as marked
  from warden.keyring where name like 'subject:%';
rollback;
