/** Text imports (`import text from './x.proto' with { type: 'text' }`), which Bun embeds. */
declare module '*.proto' {
  const text: string;
  export default text;
}
