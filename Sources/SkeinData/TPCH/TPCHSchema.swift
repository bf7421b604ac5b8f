/// The eight TPC-H tables' columns as the specification types them (decimals are DECIMAL(15,2)).
public enum TPCH {
    public static let tableNames = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]

    public static func schema(_ table: String) -> [Field]? {
        let money = DataType.decimal(scale: 2)
        switch table {
        case "region": return [Field("r_regionkey", .int64), Field("r_name", .string), Field("r_comment", .string)]
        case "nation": return [Field("n_nationkey", .int64), Field("n_name", .string), Field("n_regionkey", .int64), Field("n_comment", .string)]
        case "supplier":
            return [Field("s_suppkey", .int64), Field("s_name", .string), Field("s_address", .string), Field("s_nationkey", .int64),
                    Field("s_phone", .string), Field("s_acctbal", money), Field("s_comment", .string)]
        case "customer":
            return [Field("c_custkey", .int64), Field("c_name", .string), Field("c_address", .string), Field("c_nationkey", .int64),
                    Field("c_phone", .string), Field("c_acctbal", money), Field("c_mktsegment", .string), Field("c_comment", .string)]
        case "part":
            return [Field("p_partkey", .int64), Field("p_name", .string), Field("p_mfgr", .string), Field("p_brand", .string),
                    Field("p_type", .string), Field("p_size", .int64), Field("p_container", .string), Field("p_retailprice", money),
                    Field("p_comment", .string)]
        case "partsupp":
            return [Field("ps_partkey", .int64), Field("ps_suppkey", .int64), Field("ps_availqty", .int64),
                    Field("ps_supplycost", money), Field("ps_comment", .string)]
        case "orders":
            return [Field("o_orderkey", .int64), Field("o_custkey", .int64), Field("o_orderstatus", .string), Field("o_totalprice", money),
                    Field("o_orderdate", .date), Field("o_orderpriority", .string), Field("o_clerk", .string),
                    Field("o_shippriority", .int64), Field("o_comment", .string)]
        case "lineitem":
            return [Field("l_orderkey", .int64), Field("l_partkey", .int64), Field("l_suppkey", .int64), Field("l_linenumber", .int64),
                    Field("l_quantity", money), Field("l_extendedprice", money), Field("l_discount", money), Field("l_tax", money),
                    Field("l_returnflag", .string), Field("l_linestatus", .string), Field("l_shipdate", .date),
                    Field("l_commitdate", .date), Field("l_receiptdate", .date), Field("l_shipinstruct", .string),
                    Field("l_shipmode", .string), Field("l_comment", .string)]
        default: return nil
        }
    }

    /// CSV options for a generated `.tbl` file: '|'-delimited, no header, no quoting.
    public static func options(_ table: String, threads: Int) -> CSVOptions {
        var o = CSVOptions(delimiter: "|", header: false, schema: schema(table))
        o.quote = nil
        o.threads = threads
        return o
    }
}
