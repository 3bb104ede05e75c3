/** The platform's operators (not organizers), mounted at /ops: every route needs the operator token. */
import { replayDeadLetters } from "../checkout/sales-consumer";
import { requireOperator } from "../middleware/require-operator";
import { routeGroup } from "./route-group";

export const operators = routeGroup();

operators.use("*", requireOperator());

operators.post("/dead-letters/replay", async (c) => c.json(await replayDeadLetters(c.var.db, c.env), 200));
