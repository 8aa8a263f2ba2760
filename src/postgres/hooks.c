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
#include "nodes/plannodes.h"
#include "tcop/utility.h"

/* Rust (src/postgres/mod.rs) */
extern void *warden_utility_before(PlannedStmt *pstmt, const char *query_string);
extern void warden_utility_after(void *state, PlannedStmt *pstmt);
extern void warden_utility_forget(void *state);
extern void warden_executor_start_before(QueryDesc *query_desc, int eflags);
extern void warden_executor_run_after(QueryDesc *query_desc);
extern void warden_executor_end_after(QueryDesc *query_desc, uint64 query_id);

static ProcessUtility_hook_type prev_utility = NULL;
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
	warden_utility_after(state, pstmt);
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
}
