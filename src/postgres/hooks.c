/*
 * warden's PostgreSQL hook entry points, in C.
 *
 * Each hook calls the previous hook (or PostgreSQL's standard function) directly, outside any pgrx
 * guard. pgrx 0.18.1 turns an ERROR raised inside a guarded call into a new ERROR that keeps only
 * the SQLSTATE (and only a known one: a custom SQLSTATE becomes XX000), message, detail and hint:
 * the cursor position, CONTEXT, QUERY and internal query were lost, and PL/pgSQL handlers no
 * longer caught their own codes. Here PostgreSQL's error passes through untouched (PG_RE_THROW
 * after warden's cleanup), exactly as if warden were not loaded.
 *
 * warden's own work before and after runs in Rust (src/postgres/mod.rs): those functions are
 * pgrx-guarded and raise warden's own errors, never PostgreSQL's from the wrapped call.
 */
#include "postgres.h"

#include "executor/executor.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "nodes/plannodes.h"
#include "tcop/utility.h"

/* Rust (src/postgres/mod.rs) */
extern void *warden_utility_before(PlannedStmt *pstmt, const char *query_string);
extern void warden_utility_after(void *state, PlannedStmt *pstmt, uint64 rows);
extern void warden_utility_forget(void *state);
extern void warden_executor_start_before(QueryDesc *query_desc, int eflags);
extern void warden_executor_run_after(QueryDesc *query_desc);
extern void warden_executor_end_after(QueryDesc *query_desc, uint64 query_id);

/* Rust (src/postgres/log.rs) */
extern bool warden_log_redaction_enabled(void);
extern char *warden_log_redact(int field, const char *text, const char *message, const char *statement,
							   const char *sqlstate, const char *schema, const char *table);
extern void warden_log_free(char *p);

static ProcessUtility_hook_type prev_utility = NULL;
static emit_log_hook_type prev_emit_log = NULL;
static ExecutorStart_hook_type prev_start = NULL;
static ExecutorRun_hook_type prev_run = NULL;
static ExecutorEnd_hook_type prev_end = NULL;

static void
warden_process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc)
{
	void	   *volatile state = warden_utility_before(pstmt, query_string);

	PG_TRY();
	{
		if (prev_utility)
			prev_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
		else
			standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params,
									query_env, dest, qc);
	}
	PG_CATCH();
	{
		/* frees warden's state without touching PostgreSQL; the error goes on unchanged */
		warden_utility_forget(state);
		PG_RE_THROW();
	}
	PG_END_TRY();
	/* the rows a COPY processed, for the PHI read log */
	warden_utility_after(state, pstmt, qc != NULL ? qc->nprocessed : 0);
}

static void
warden_executor_start(QueryDesc *query_desc, int eflags)
{
	warden_executor_start_before(query_desc, eflags);
	if (prev_start)
		prev_start(query_desc, eflags);
	else
		standard_ExecutorStart(query_desc, eflags);
}

static void
warden_executor_run(QueryDesc *query_desc, ScanDirection direction, uint64 count,
					bool execute_once)
{
	if (prev_run)
		prev_run(query_desc, direction, count, execute_once);
	else
		standard_ExecutorRun(query_desc, direction, count, execute_once);
	warden_executor_run_after(query_desc);
}

static void
warden_executor_end(QueryDesc *query_desc)
{
	uint64		query_id = 0;

	if (query_desc != NULL && query_desc->plannedstmt != NULL)
		query_id = query_desc->plannedstmt->queryId;
	if (prev_end)
		prev_end(query_desc);
	else
		standard_ExecutorEnd(query_desc);
	warden_executor_end_after(query_desc, query_id);
}

/*
 * The server log's redaction (src/postgres/log.rs says what is removed).
 *
 * emit_log_hook runs before the message is written to the server log and before it is sent to the
 * client, on the same ErrorData: changing it would change what the client receives. So when a
 * message needs redacting, the original is kept from the server log (output_to_server = false, and
 * it still goes to the client unchanged), and a copy with the redacted fields is written to the
 * server log alone: a LOG_SERVER_ONLY report whose fields (level, SQLSTATE, detail, context, ...)
 * this hook replaces with the copy's when it sees it come through; the STATEMENT line comes from
 * debug_query_string, which points at the redacted statement while the copy is written.
 * Interrupts are held and the error context stack is empty meanwhile, so the copy neither runs
 * context callbacks twice nor raises.
 */
static ErrorData *pending_copy = NULL;

static char *
redact_field(int field, const char *text, ErrorData *edata, const char *statement, const char *sqlstate,
			 bool *changed)
{
	char	   *r;
	char	   *copy;

	if (text == NULL)
		return NULL;
	r = warden_log_redact(field, text, edata->message, statement, sqlstate, edata->schema_name,
						  edata->table_name);
	if (r == NULL)
		return (char *) text;
	copy = pstrdup(r);
	warden_log_free(r);
	*changed = true;
	return copy;
}

static void
replace_string(char **slot, const char *value)
{
	if (*slot != NULL)
		pfree(*slot);
	*slot = value != NULL ? pstrdup(value) : NULL;
}

/* Writes `copy` to the server log alone (see above), with `statement` as its STATEMENT. */
static pg_noinline void
emit_copy(ErrorData *copy, const char *statement, ErrorData *original)
{
	const char *saved_statement = debug_query_string;
	ErrorContextCallback *saved_context_stack = error_context_stack;

	HOLD_INTERRUPTS();
	PG_TRY();
	{
		error_context_stack = NULL;
		if (statement != NULL)
			debug_query_string = statement;
		pending_copy = copy;
		if (errstart(LOG_SERVER_ONLY, original->domain))
		{
			errmsg_internal("%s", copy->message != NULL ? copy->message : "");
			errfinish(original->filename, original->lineno, original->funcname);
		}
	}
	PG_FINALLY();
	{
		pending_copy = NULL;
		debug_query_string = saved_statement;
		error_context_stack = saved_context_stack;
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
}

static void
warden_emit_log(ErrorData *edata)
{
	ErrorData	copy;
	bool		changed = false;
	const char *statement;
	const char *redacted_statement = NULL;
	char		sqlstate[6];

	if (pending_copy != NULL)
	{
		/* the redacted copy, coming through: give it the original's fields */
		ErrorData  *c = pending_copy;

		pending_copy = NULL;
		edata->elevel = c->elevel;
		edata->sqlerrcode = c->sqlerrcode;
		edata->hide_stmt = c->hide_stmt;
		edata->hide_ctx = c->hide_ctx;
		edata->filename = c->filename;
		edata->lineno = c->lineno;
		edata->funcname = c->funcname;
		edata->domain = c->domain;
		edata->context_domain = c->context_domain;
		edata->cursorpos = c->cursorpos;
		edata->internalpos = c->internalpos;
		edata->saved_errno = c->saved_errno;
		replace_string(&edata->message, c->message);
		replace_string(&edata->detail, c->detail);
		replace_string(&edata->detail_log, c->detail_log);
		replace_string(&edata->hint, c->hint);
		replace_string(&edata->context, c->context);
		replace_string(&edata->backtrace, c->backtrace);
		replace_string(&edata->internalquery, c->internalquery);
		replace_string(&edata->schema_name, c->schema_name);
		replace_string(&edata->table_name, c->table_name);
		replace_string(&edata->column_name, c->column_name);
		replace_string(&edata->datatype_name, c->datatype_name);
		replace_string(&edata->constraint_name, c->constraint_name);
		if (prev_emit_log)
			prev_emit_log(edata);
		return;
	}
	if (!edata->output_to_server || !warden_log_redaction_enabled())
	{
		if (prev_emit_log)
			prev_emit_log(edata);
		return;
	}
	statement = (!edata->hide_stmt && debug_query_string != NULL) ? debug_query_string : "";
	memcpy(sqlstate, unpack_sql_state(edata->sqlerrcode), 6);
	copy = *edata;
	copy.message = redact_field(0, edata->message, edata, statement, sqlstate, &changed);
	copy.detail = redact_field(1, edata->detail, edata, statement, sqlstate, &changed);
	copy.detail_log = redact_field(1, edata->detail_log, edata, statement, sqlstate, &changed);
	copy.hint = redact_field(2, edata->hint, edata, statement, sqlstate, &changed);
	copy.context = redact_field(3, edata->context, edata, statement, sqlstate, &changed);
	copy.internalquery = redact_field(4, edata->internalquery, edata, statement, sqlstate, &changed);
	if (statement[0] != '\0')
	{
		bool		statement_changed = false;

		redacted_statement = redact_field(5, statement, edata, statement, sqlstate, &statement_changed);
		changed |= statement_changed;
	}
	if (!changed)
	{
		if (prev_emit_log)
			prev_emit_log(edata);
		return;
	}
	/* the original goes to the client only; the copy to the server log only */
	edata->output_to_server = false;
	emit_copy(&copy, redacted_statement, edata);
	/* the redacted strings (those that differ from the original's) */
#define FREE_IF_COPIED(f) \
	if (copy.f != NULL && copy.f != edata->f) pfree(copy.f)
	FREE_IF_COPIED(message);
	FREE_IF_COPIED(detail);
	FREE_IF_COPIED(detail_log);
	FREE_IF_COPIED(hint);
	FREE_IF_COPIED(context);
	FREE_IF_COPIED(internalquery);
#undef FREE_IF_COPIED
	if (redacted_statement != NULL && redacted_statement != statement)
		pfree((char *) redacted_statement);
}

/* Called once from _PG_init. */
void
warden_install_hooks(void)
{
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = warden_process_utility;
	prev_start = ExecutorStart_hook;
	ExecutorStart_hook = warden_executor_start;
	prev_run = ExecutorRun_hook;
	ExecutorRun_hook = warden_executor_run;
	prev_end = ExecutorEnd_hook;
	ExecutorEnd_hook = warden_executor_end;
	prev_emit_log = emit_log_hook;
	emit_log_hook = warden_emit_log;
}
